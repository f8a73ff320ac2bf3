package ui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flashstock/flashstock/ui"
)

// mounted serves the dashboard the way a node does: under /ui/, prefix stripped.
func mounted() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler()))
	mux.Handle("/ui", http.StripPrefix("/ui", ui.Handler()))
	return mux
}

func TestHandler_ServesEmbeddedFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.Handler
		path    string
		status  int
		ctype   string
		body    string
	}{
		{"index under prefix", mounted(), "/ui/", 200, "text/html", `<script src="app.js" defer>`},
		{"script", mounted(), "/ui/app.js", 200, "text/javascript", "../"},
		{"style", mounted(), "/ui/style.css", 200, "text/css", ":root"},
		{"icon", mounted(), "/ui/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"unknown file", mounted(), "/ui/nope.js", 404, "text/plain", "404"},
		{"no prefix stripping", ui.Handler(), "/ui/app.js", 200, "text/javascript", "EventSource"},
		{"at the root", ui.Handler(), "/", 200, "text/html", "flashstock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.handler.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.status {
				t.Fatalf("GET %s: status %d, want %d", tc.path, rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.ctype)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.body)
			}
		})
	}
}

func TestHandler_RedirectsBarePrefixToDirectory(t *testing.T) {
	for _, h := range []http.Handler{mounted(), ui.Handler()} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/ui", nil))
		if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
			t.Errorf("GET /ui: %d Location %q, want 301 /ui/ (relative URLs need the slash)", rec.Code, rec.Header().Get("Location"))
		}
	}
}

func TestHandler_SetsSecurityHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	mounted().ServeHTTP(rec, httptest.NewRequest("GET", "/ui/", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
}

func TestHandler_RefusesWrites(t *testing.T) {
	rec := httptest.NewRecorder()
	mounted().ServeHTTP(rec, httptest.NewRequest("POST", "/ui/", strings.NewReader("x")))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/: %d Allow %q, want 405 with Allow: GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}
