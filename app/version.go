package app

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// BuildInfo says what binary this is, from the Go build info.
type BuildInfo struct {
	// Version is app.Version as the build set it, else the main module's
	// version: a tag (v1.2.3), a pseudo-version derived from the VCS
	// (v0.0.0-20261206120000-9c33a8300000+dirty), or "(devel)".
	Version string `json:"version"`
	// Module is the main module path.
	Module string `json:"module"`
	// Revision, Time and Modified describe the VCS checkout the binary was
	// built from ("" when the build had no VCS information, e.g. a
	// source tree without .git).
	Revision string `json:"vcs_revision,omitempty"`
	Time     string `json:"vcs_time,omitempty"`
	Modified bool   `json:"vcs_modified,omitempty"`
	// Go is the toolchain; Platform is GOOS/GOARCH.
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// Build returns the build information of the running binary.
func Build() BuildInfo {
	b := BuildInfo{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.Module = bi.Main.Path
	if b.Version == "" || b.Version == "dev" {
		if b.Version = bi.Main.Version; b.Version == "" {
			b.Version = "(devel)"
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is the text of `jurisdns version`.
func (b BuildInfo) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "jurisdns %s\n", b.Version)
	if b.Module != "" {
		fmt.Fprintf(&sb, "module   %s\n", b.Module)
	}
	switch {
	case b.Revision == "":
		sb.WriteString("revision unknown (built without VCS information)\n")
	default:
		fmt.Fprintf(&sb, "revision %s", b.Revision)
		if b.Time != "" {
			fmt.Fprintf(&sb, " (%s)", b.Time)
		}
		if b.Modified {
			sb.WriteString(" with local modifications")
		}
		sb.WriteString("\n")
	}
	fmt.Fprintf(&sb, "go       %s %s\n", b.Go, b.Platform)
	return sb.String()
}

func init() {
	// Report the build info's version where no -X flag set one.
	if Version == "" || Version == "dev" {
		Version = Build().Version
	}
}
