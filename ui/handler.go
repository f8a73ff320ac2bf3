package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// securityHeaders keep the page to its own origin: its scripts, styles and API calls all
// come from the node that serves it, so nothing else needs to be allowed.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
	// The files change only with the binary; no-cache revalidates them after an upgrade.
	"Cache-Control": "no-cache",
}

// Handler serves the dashboard's files. Mount it under a prefix with http.StripPrefix
// ("/ui/app.js" reaches it as "/app.js"); a request for the bare prefix ("/ui", which
// StripPrefix turns into "") is redirected to "/ui/" so that the page's relative URLs
// resolve. Paths that still carry the "/ui/" prefix are served too, so mounting it
// without StripPrefix also works. Only GET and HEAD are allowed.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic("ui: embedded files missing: " + err.Error()) // a build defect, not a runtime condition
	}
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == "" || p == "/ui" {
			// Relative to the request path: "/ui" (or "" under StripPrefix) becomes "/ui/".
			http.Redirect(w, r, "ui/", http.StatusMovedPermanently)
			return
		}
		if rest, ok := strings.CutPrefix(p, "/ui/"); ok {
			p = "/" + rest
		}
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = p, ""
		r2.URL = &u
		fileServer.ServeHTTP(w, r2)
	})
}
