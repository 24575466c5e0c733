package status

import (
	"bytes"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed web
var webFS embed.FS

// contentSecurityPolicy allows only the page's own files: no inline script
// or style, no other origin, no framing, no form posting elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the page and its API:
//
//	GET /                      the page (index.html)
//	GET /static/...            its embedded files (CSS, JavaScript, icon)
//	GET /api/status            Page as JSON
//	GET /api/explain?name=NAME&client=IP[&type=A]   CheckResult as JSON
//
// HEAD is served like GET; every other method gets 405. Mount it on the
// admin server with admin.Server.Handle("/", h): the admin's own routes
// (/healthz, /readyz, /metrics) are more specific and keep precedence.
func (s *Status) Handler() http.Handler {
	static, err := fs.Sub(webFS, "web")
	if err != nil { // cannot happen: web is embedded
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, static, "index.html")
	})
	mux.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "index.html" || strings.HasPrefix(name, ".") {
			http.NotFound(w, r)
			return
		}
		serveFile(w, r, static, name)
	})
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.snapshot())
	})
	mux.HandleFunc("GET /api/explain", s.explain)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such API: " + r.URL.Path})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			if strings.HasPrefix(r.URL.Path, "/api/") {
				writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method " + r.Method + " not allowed: the status page is read-only"})
				return
			}
			http.Error(w, "method not allowed: the status page is read-only", http.StatusMethodNotAllowed)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// serveFile serves an embedded file; the files change only with the
// binary, so clients may cache them briefly.
func serveFile(w http.ResponseWriter, r *http.Request, static fs.FS, name string) {
	b, err := fs.ReadFile(static, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := "application/octet-stream"
	switch {
	case strings.HasSuffix(name, ".html"):
		ct = "text/html; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		ct = "text/css; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		ct = "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".svg"):
		ct = "image/svg+xml"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

type apiError struct {
	Error string `json:"error"`
}

func (s *Status) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	addr, qt, err := explainQuery(q.Get("name"), q.Get("client"), q.Get("type"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	pol := s.policy()
	if pol == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "no policy loaded yet"})
		return
	}
	writeJSON(w, http.StatusOK, Check(pol, strings.TrimSpace(q.Get("name")), addr, qt, s.now()))
}

// writeJSON writes v as indented JSON. encoding/json escapes <, > and & in
// strings, so the body is safe even if a client sniffs it as HTML.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: err.Error()})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
