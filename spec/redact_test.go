package spec

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://lists.example/ai.txt", "https://lists.example/ai.txt"},
		{"https://user:s3cret@lists.example/ai.txt", "https://REDACTED@lists.example/ai.txt"},
		{"https://tok3n@lists.example/ai.txt", "https://REDACTED@lists.example/ai.txt"},
		{"https://lists.example/ai.txt?api_key=s3cret&x=1", "https://lists.example/ai.txt?REDACTED"},
		{"https://lists.example/ai.txt#s3cret", "https://lists.example/ai.txt"},
		{"https://u:s3cret@lists.example/a?token=s3cret#s3cret", "https://REDACTED@lists.example/a?REDACTED"},
		{"://bad s3cret", "<unparsable URL>"},
	} {
		got := RedactURL(c.in)
		if got != c.want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
