package paxos

import (
	"fmt"
	"io"
	"strings"
)

// trace prints what the simulator does: as numbered text lines, or as a Mermaid sequence
// diagram. A nil *trace prints nothing, so the simulator can call it unconditionally.
type trace struct {
	w       io.Writer
	mermaid bool
	quiet   map[MsgType]bool // routine traffic (heartbeats) left out unless something happens
	// delivered is set while the events printed belong to the message line just printed;
	// events of a tick get their own time stamp instead.
	delivered bool
}

// endStep marks the end of one node's step.
func (t *trace) endStep() {
	if t != nil {
		t.delivered = false
	}
}

// message prints a delivery (status "" or "duplicate") or a loss.
func (t *trace) message(now int, m Message, status string) {
	if t == nil || t.quiet[m.Type] {
		return
	}
	if t.mermaid {
		arrow := "->>"
		text := mermaidText(m.String())
		if strings.HasPrefix(status, "lost") {
			arrow, text = "-x", text+" ("+status+")"
		} else if status != "" {
			text += " (" + status + ")"
		}
		fmt.Fprintf(t.w, "    %s%s%s: %s\n", nodeName(m.From), arrow, nodeName(m.To), text)
		return
	}
	line := fmt.Sprintf("t=%-4d %s → %s  %s", now, nodeName(m.From), nodeName(m.To), m)
	switch {
	case strings.HasPrefix(status, "lost"):
		line += "   ✗ " + status
	case status != "":
		line += "   (" + status + ")"
	}
	fmt.Fprintln(t.w, line)
	t.delivered = status == "" || status == "duplicate"
}

// events prints what a role decided and the rule it applied.
func (t *trace) events(now int, evs []Event) {
	if t == nil {
		return
	}
	for _, e := range evs {
		if t.mermaid {
			fmt.Fprintf(t.w, "    Note over %s: %s %s\n", nodeName(e.Node), mermaidText("["+e.Rule+"]"), mermaidText(e.Text))
			continue
		}
		stamp := ""
		if !t.delivered {
			stamp = fmt.Sprintf("t=%d", now)
		}
		fmt.Fprintf(t.w, "%-7s  %-4s %-12s %s\n", stamp, nodeName(e.Node), "["+e.Rule+"]", e.Text)
	}
}

// notef prints something the simulator itself did: a crash, a partition, a summary.
func (t *trace) notef(now int, over []NodeID, format string, args ...any) {
	if t == nil {
		return
	}
	text := fmt.Sprintf(format, args...)
	if t.mermaid {
		who := "n1"
		if ns := names(over); len(ns) > 0 {
			who = ns[0] // Mermaid spans a note over at most two participants
			if len(ns) > 1 {
				who += "," + ns[len(ns)-1]
			}
		}
		fmt.Fprintf(t.w, "    Note over %s: %s\n", who, mermaidText(text))
		return
	}
	fmt.Fprintf(t.w, "t=%-4d ** %s\n", now, text)
}

// mermaidText removes what Mermaid would read as syntax.
func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "#", "no.", "\n", " ", ":", " ").Replace(s)
}
