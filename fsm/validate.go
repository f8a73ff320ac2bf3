package fsm

import (
	"fmt"

	"github.com/flashstock/flashstock/api"
)

// Validate checks cmd against the input rules of the HTTP contract. It looks only at the
// command, never at state, so the HTTP layer can answer 400 before proposing and apply can
// run the same check on whatever reached the log. The error is an *api.Error with code
// invalid_argument.
func Validate(c Command) error {
	bad := func(format string, args ...any) error {
		return api.Errorf(api.InvalidArgument, format, args...)
	}
	needRequest := func() error {
		if c.RequestID == "" {
			return bad("request_id is required")
		}
		return nil
	}
	if c.RequestID != "" && !ValidID(c.RequestID) {
		return bad("request_id must be 1-%d printable ASCII characters", MaxIDLen)
	}
	switch c.Kind {
	case KindCreateSKU:
		if err := checkSKU(c.SKU); err != nil {
			return err
		}
		if c.Qty < 0 || c.Qty > MaxInitial {
			return bad("stock must be 0..%d, got %d", MaxInitial, c.Qty)
		}
		if c.PerUserLimit < 0 || c.PerUserLimit > MaxQty {
			return bad("per_user_limit must be 0..%d, got %d", MaxQty, c.PerUserLimit)
		}
		return nil
	case KindRestock, KindDeduct:
		if err := needRequest(); err != nil {
			return err
		}
		if err := checkSKU(c.SKU); err != nil {
			return err
		}
		if err := checkQty(c.Qty); err != nil {
			return err
		}
		if c.Kind == KindDeduct && !ValidID(c.UserID) {
			return bad("user_id must be 1-%d printable ASCII characters", MaxIDLen)
		}
		return nil
	case KindReserve:
		if err := needRequest(); err != nil {
			return err
		}
		if !ValidID(c.OrderID) {
			return bad("order_id must be 1-%d printable ASCII characters, not . or ..", MaxIDLen)
		}
		if !ValidID(c.UserID) {
			return bad("user_id must be 1-%d printable ASCII characters", MaxIDLen)
		}
		if c.TTLMillis < 1 || c.TTLMillis > MaxTTLMillis {
			return bad("ttl_ms must be 1..%d, got %d", MaxTTLMillis, c.TTLMillis)
		}
		if len(c.Lines) == 0 || len(c.Lines) > MaxLines {
			return bad("an order needs 1..%d lines, got %d", MaxLines, len(c.Lines))
		}
		for i, l := range c.Lines {
			if err := checkSKU(l.SKU); err != nil {
				return err
			}
			if err := checkQty(l.Qty); err != nil {
				return err
			}
			for _, prev := range c.Lines[:i] {
				if prev.SKU == l.SKU {
					return bad("sku %q appears twice in the order", l.SKU)
				}
			}
		}
		return nil
	case KindConfirm, KindCancel, KindShip:
		if err := needRequest(); err != nil {
			return err
		}
		if !ValidID(c.OrderID) {
			return bad("order_id must be 1-%d printable ASCII characters, not . or ..", MaxIDLen)
		}
		return nil
	case KindSetLevel:
		if c.Level == 0 {
			return bad("set_level: level must be positive")
		}
		return nil
	case KindAdjust:
		if err := needRequest(); err != nil {
			return err
		}
		if err := checkSKU(c.SKU); err != nil {
			return err
		}
		if c.Qty == 0 || c.Qty < -MaxQty || c.Qty > MaxQty {
			return bad("qty must be -%d..%d and not 0, got %d", MaxQty, MaxQty, c.Qty)
		}
		if !validName(c.Reason, MaxReasonLen) {
			return bad("reason must be 1-%d characters of [A-Za-z0-9._:-] (damage, miscount, ...), got %q", MaxReasonLen, truncate(c.Reason))
		}
		return nil
	case KindRetire:
		if err := needRequest(); err != nil {
			return err
		}
		return checkSKU(c.SKU)
	case KindExpireHolds:
		return nil
	case KindSetMember, KindRemoveMember:
		if !ValidID(c.Member.ID) {
			return bad("member id must be 1-%d printable ASCII characters", MaxIDLen)
		}
		if c.Kind == KindSetMember && (!validAddr(c.Member.RaftAddr) || !validAddr(c.Member.HTTPAddr)) {
			return bad("member addresses must be 1-%d printable ASCII characters", MaxAddrLen)
		}
		return nil
	case KindBatch:
		if c.RequestID != "" {
			return bad("a batch carries no request_id; its commands do")
		}
		if len(c.Batch) == 0 || len(c.Batch) > MaxBatch {
			return bad("a batch needs 1..%d commands, got %d", MaxBatch, len(c.Batch))
		}
		for i, sub := range c.Batch {
			if sub.Kind == KindBatch {
				return bad("batch command %d: batches do not nest", i)
			}
			if err := Validate(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return bad("unknown command kind %d", c.Kind)
}

// ValidSKU reports whether s is 1-64 characters of [A-Za-z0-9._:-].
func ValidSKU(s string) bool { return validName(s, MaxSKULen) }

// validName reports whether s is 1-max characters of [A-Za-z0-9._:-]: a SKU id, or an
// adjustment's reason, which reports group by.
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether s is 1-128 printable ASCII characters (space through tilde),
// and not "." or "..", which cannot travel as a URL path segment.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validAddr accepts 1-256 printable ASCII characters without spaces (host:port).
func validAddr(s string) bool {
	if len(s) == 0 || len(s) > MaxAddrLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func checkSKU(s string) error {
	if !ValidSKU(s) {
		return api.Errorf(api.InvalidArgument, "sku must be 1-%d characters of [A-Za-z0-9._:-], got %q", MaxSKULen, truncate(s))
	}
	return nil
}

func checkQty(q int64) error {
	if q < 1 || q > MaxQty {
		return api.Errorf(api.InvalidArgument, "qty must be 1..%d, got %d", MaxQty, q)
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return fmt.Sprint(s)
}
