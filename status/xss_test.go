package status

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestStaticFilesNoHTMLSinks checks the page's sources: the script builds
// the DOM with textContent and createElement only, and the HTML has no
// inline script, style or event handler (the CSP forbids them anyway).
func TestStaticFilesNoHTMLSinks(t *testing.T) {
	sinks := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b|setTimeout\s*\(\s*["'\x60]|createContextualFragment|DOMParser|srcdoc|javascript:`)
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<\s]|<style|\son[a-z]+\s*=|\sstyle\s*=|(?:src|href)\s*=\s*["']?(?:https?:)?//`)
	files := 0
	err := fs.WalkDir(webFS, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(webFS, path)
		if err != nil {
			return err
		}
		files++
		src := string(b)
		switch {
		case strings.HasSuffix(path, ".js"):
			// Comments may name the sinks they avoid.
			code := regexp.MustCompile(`(?m)^\s*//.*$`).ReplaceAllString(src, "")
			if m := sinks.FindString(code); m != "" {
				t.Errorf("%s uses an HTML sink: %q", path, m)
			}
			if !strings.Contains(code, "textContent") || !strings.Contains(code, "createTextNode") {
				t.Errorf("%s: expected to build text with textContent/createTextNode", path)
			}
		case strings.HasSuffix(path, ".html"):
			if m := inline.FindString(src); m != "" {
				t.Errorf("%s has inline code, style or an external resource: %q", path, m)
			}
		case strings.HasSuffix(path, ".css"):
			if strings.Contains(src, "@import") || strings.Contains(src, "url(") {
				t.Errorf("%s loads external resources", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Errorf("only %d embedded files", files)
	}
}
