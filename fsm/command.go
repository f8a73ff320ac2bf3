package fsm

import (
	"errors"
	"fmt"
)

// commandVersion is the first byte of every encoded command. Decoders refuse versions they
// do not know, so a newer node's log entry is never misread by an older one.
const commandVersion = 1

// maxDecodeString bounds any string field while decoding; Validate applies the tighter
// per-field rules afterwards.
const maxDecodeString = 1024

// ErrDecode is wrapped by every decoding failure.
var ErrDecode = errors.New("decode command")

// Encode gives the log encoding of cmd. It refuses only what cannot be represented
// (an unknown kind, a nested batch); input rules are Validate's job.
func Encode(cmd Command) ([]byte, error) {
	w := writer{b: make([]byte, 0, 64)}
	w.byte(commandVersion)
	if err := encodeInto(&w, cmd, true); err != nil {
		return nil, err
	}
	return w.b, nil
}

func encodeInto(w *writer, c Command, top bool) error {
	if _, ok := kindNames[c.Kind]; !ok {
		return fmt.Errorf("encode: unknown command kind %d", c.Kind)
	}
	w.byte(byte(c.Kind))
	w.string(c.RequestID)
	w.varint(c.Time)
	switch c.Kind {
	case KindCreateSKU:
		w.string(c.SKU)
		w.varint(c.Qty)
		w.varint(c.PerUserLimit)
	case KindRestock:
		w.string(c.SKU)
		w.varint(c.Qty)
	case KindDeduct:
		w.string(c.SKU)
		w.varint(c.Qty)
		w.string(c.UserID)
	case KindReserve:
		w.string(c.OrderID)
		w.string(c.UserID)
		w.varint(c.TTLMillis)
		w.uvarint(uint64(len(c.Lines)))
		for _, l := range c.Lines {
			w.string(l.SKU)
			w.varint(l.Qty)
		}
	case KindConfirm, KindCancel, KindShip:
		w.string(c.OrderID)
	case KindExpireHolds:
	case KindSetMember:
		w.string(c.Member.ID)
		w.string(c.Member.RaftAddr)
		w.string(c.Member.HTTPAddr)
	case KindRemoveMember:
		w.string(c.Member.ID)
	case KindSetLevel:
		w.uvarint(c.Level)
	case KindAdjust:
		w.string(c.SKU)
		w.varint(c.Qty)
		w.string(c.Reason)
	case KindRetire:
		w.string(c.SKU)
	case KindBatch:
		if !top {
			return errors.New("encode: nested batch")
		}
		w.uvarint(uint64(len(c.Batch)))
		for _, sub := range c.Batch {
			if err := encodeInto(w, sub, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// Decode parses a log entry. Garbage gives an error wrapping ErrDecode, never a panic.
func Decode(b []byte) (Command, error) {
	r := reader{b: b}
	if v := r.byte(); r.err == nil && v != commandVersion {
		return Command{}, fmt.Errorf("%w: unknown version %d", ErrDecode, v)
	}
	cmd := decodeFrom(&r, true)
	if err := r.done(); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	return cmd, nil
}

func decodeFrom(r *reader, top bool) Command {
	c := Command{Kind: Kind(r.byte())}
	if _, ok := kindNames[c.Kind]; !ok && r.err == nil {
		r.fail(fmt.Errorf("unknown kind %d", c.Kind))
	}
	c.RequestID = r.string(maxDecodeString)
	c.Time = r.varint()
	switch c.Kind {
	case KindCreateSKU:
		c.SKU = r.string(maxDecodeString)
		c.Qty = r.varint()
		c.PerUserLimit = r.varint()
	case KindRestock:
		c.SKU = r.string(maxDecodeString)
		c.Qty = r.varint()
	case KindDeduct:
		c.SKU = r.string(maxDecodeString)
		c.Qty = r.varint()
		c.UserID = r.string(maxDecodeString)
	case KindReserve:
		c.OrderID = r.string(maxDecodeString)
		c.UserID = r.string(maxDecodeString)
		c.TTLMillis = r.varint()
		n := r.count(MaxLines)
		if n > 0 {
			c.Lines = make([]Line, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			c.Lines[i] = Line{SKU: r.string(maxDecodeString), Qty: r.varint()}
		}
	case KindConfirm, KindCancel, KindShip:
		c.OrderID = r.string(maxDecodeString)
	case KindSetMember:
		c.Member = Member{ID: r.string(maxDecodeString), RaftAddr: r.string(maxDecodeString), HTTPAddr: r.string(maxDecodeString)}
	case KindRemoveMember:
		c.Member.ID = r.string(maxDecodeString)
	case KindSetLevel:
		c.Level = r.uvarint()
	case KindAdjust:
		c.SKU = r.string(maxDecodeString)
		c.Qty = r.varint()
		c.Reason = r.string(maxDecodeString)
	case KindRetire:
		c.SKU = r.string(maxDecodeString)
	case KindBatch:
		if !top {
			r.fail(errors.New("nested batch"))
			return c
		}
		n := r.count(MaxBatch)
		if n > 0 {
			c.Batch = make([]Command, 0, n)
		}
		for i := 0; i < n && r.err == nil; i++ {
			c.Batch = append(c.Batch, decodeFrom(r, false))
		}
	}
	return c
}
