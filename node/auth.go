package node

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/flashstock/flashstock/api"
)

// Role is what a bearer token may do. Roles are ordered: each one may do everything the
// roles below it may.
//
//   - read: reads (SKUs, orders, history, watch, cluster view, metrics, debug state) when
//     reads need a token at all (Config.PublicReads false);
//   - app: every data mutation: create SKU, restock, deduct (single and batch), reserve,
//     confirm, cancel, ship. Creating and restocking SKUs is the merchant application's
//     business in a flash sale (it sets up the sale), so it is app, not admin: an
//     application never needs a token that can also reshape the cluster;
//   - admin: membership (join, leave), leadership transfer, backup, pprof; node-to-node
//     calls (join, member status) use an admin token too.
type Role int

// The roles, weakest first. RoleNone is "no token needed".
const (
	RoleNone Role = iota
	RoleRead
	RoleApp
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleRead:
		return "read"
	case RoleApp:
		return "app"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads a role name of a token file.
func ParseRole(s string) (Role, error) {
	switch s {
	case "read":
		return RoleRead, nil
	case "app":
		return RoleApp, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q: want admin, app or read", s)
}

// minTokenLen keeps guessable tokens out of token files.
const minTokenLen = 16

// Tokens is the set of bearer tokens a node accepts, each with its role. Only SHA-256
// digests are kept, and a presented token is compared with every one of them in constant
// time, so neither the answer's timing nor a memory dump reveals a token. Every member of a
// cluster must be given the same tokens: members call each other with an admin token.
type Tokens struct {
	entries  []tokenEntry
	internal string // an admin token, sent on node-to-node calls
}

type tokenEntry struct {
	role   Role
	digest [sha256.Size]byte
	name   string // "role:line" — a rate limiting key that is not the secret itself
}

// LoadTokens reads a token file (see ParseTokens). Tokens come from a file, never from the
// command line, where any user of the machine can read them (ps, /proc/*/cmdline).
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads lines of "role token" (role admin, app or read; the token at least 16
// characters without spaces). Blank lines and lines starting with # are skipped. At least
// one admin token is required: members authenticate to each other with the first one.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]bool{}
	sc := bufio.NewScanner(r)
	var errs []error
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			errs = append(errs, fmt.Errorf("line %d: want \"role token\"", line))
			continue
		}
		role, err := ParseRole(fields[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		if len(fields[1]) < minTokenLen {
			errs = append(errs, fmt.Errorf("line %d: token shorter than %d characters", line, minTokenLen))
			continue
		}
		d := sha256.Sum256([]byte(fields[1]))
		if seen[d] {
			errs = append(errs, fmt.Errorf("line %d: token listed twice", line))
			continue
		}
		seen[d] = true
		t.entries = append(t.entries, tokenEntry{role: role, digest: d, name: fmt.Sprintf("%s:%d", role, line)})
		if role == RoleAdmin && t.internal == "" {
			t.internal = fields[1]
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 && t.internal == "" {
		errs = append(errs, errors.New("no admin token: members need one to call each other"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// lookup finds the entry of a presented token. It compares the digest with every entry,
// without an early exit, so the time taken does not depend on which entry (if any) matched.
func (t *Tokens) lookup(presented string) (tokenEntry, bool) {
	d := sha256.Sum256([]byte(presented))
	found := -1
	for i := range t.entries {
		eq := subtle.ConstantTimeCompare(d[:], t.entries[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return tokenEntry{}, false
	}
	return t.entries[found], true
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

type identityKey struct{}

// identity is who made a request, as far as auth knows: the token entry's name, or "".
func identity(ctx context.Context) string {
	s, _ := ctx.Value(identityKey{}).(string)
	return s
}

var (
	errUnauthenticated = &api.Error{Code: api.Unauthorized, Message: "a valid bearer token is required (Authorization: Bearer <token>)"}
)

// authorize checks the bearer token before anything else happens to a request of a route
// that needs role need, proposals included (auth is never a question for apply). A missing
// or unknown token is 401; a valid token whose role is too weak for the route is 403 — both
// with code unauthorized, so clients need only the code.
func (n *Node) authorize(need Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, hasTok := bearer(r)
		var entry tokenEntry
		known := false
		if hasTok {
			entry, known = n.cfg.Auth.lookup(tok)
		}
		switch {
		case need == RoleNone:
		case !known:
			w.Header().Set("WWW-Authenticate", `Bearer realm="flashstock"`)
			n.countAuthFailure("unauthenticated")
			writeJSON(w, http.StatusUnauthorized, api.ErrorBody{Error: errUnauthenticated})
			return
		case entry.role < need:
			n.countAuthFailure("forbidden")
			writeJSON(w, http.StatusForbidden, api.ErrorBody{Error: api.Errorf(api.Unauthorized,
				"this token's role is %s; %s %s needs %s", entry.role, r.Method, r.URL.Path, need)})
			return
		}
		if known {
			r = r.WithContext(context.WithValue(r.Context(), identityKey{}, entry.name))
		}
		h.ServeHTTP(w, r)
	})
}

// setInternalAuth authenticates a node-to-node call (join, member status) with the admin
// token every member shares.
func (n *Node) setInternalAuth(req *http.Request) {
	if n.cfg.Auth != nil {
		req.Header.Set("Authorization", "Bearer "+n.cfg.Auth.internal)
	}
}
