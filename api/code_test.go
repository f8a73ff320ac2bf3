package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestCodes_EveryCodeHasAStatus(t *testing.T) {
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if seen[c] {
			t.Fatalf("code %q listed twice", c)
		}
		seen[c] = true
		if !c.Known() {
			t.Errorf("code %q listed but not in the table", c)
		}
	}
	if len(seen) != len(codes) {
		t.Fatalf("Codes() lists %d codes, table has %d", len(seen), len(codes))
	}
}

func TestCode_HTTPStatus(t *testing.T) {
	cases := map[Code]int{
		InvalidArgument: 400, MethodNotAllowed: 405, Unauthorized: 401, NotFound: 404, AlreadyExists: 409,
		SoldOut: 409, InsufficientStock: 409, LimitExceeded: 409, Overloaded: 429,
		NotLeader: 503, NoLeader: 503, Timeout: 504, Internal: 500,
		Code("made_up"): http.StatusInternalServerError,
	}
	for c, want := range cases {
		if got := c.HTTPStatus(); got != want {
			t.Errorf("%s: status %d, want %d", c, got, want)
		}
	}
}

func TestCode_Retryable(t *testing.T) {
	for _, c := range []Code{Overloaded, NotLeader, NoLeader, Timeout, Internal} {
		if !c.Retryable() {
			t.Errorf("%s should be retryable", c)
		}
	}
	for _, c := range []Code{InvalidArgument, MethodNotAllowed, SoldOut, InsufficientStock, NotFound, AlreadyExists} {
		if c.Retryable() {
			t.Errorf("%s must not be retryable", c)
		}
	}
}

func TestError_IsMatchesByCode(t *testing.T) {
	err := fmt.Errorf("deduct: %w", &Error{Code: SoldOut, Message: "sku x", Leader: "a"})
	if !errors.Is(err, &Error{Code: SoldOut}) {
		t.Fatal("wrapped sold_out error does not match by code")
	}
	if errors.Is(err, &Error{Code: NotFound}) {
		t.Fatal("sold_out error matched not_found")
	}
	if got := Errorf(NotFound, "sku %q", "a").Error(); got != `not_found: sku "a"` {
		t.Fatalf("message %q", got)
	}
}
