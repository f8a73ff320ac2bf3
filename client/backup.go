package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/flashstock/flashstock/api"
)

// BackupInfo describes a backup written by Backup.
type BackupInfo struct {
	Node         string // the HTTP address of the node that streamed it
	AppliedIndex uint64 // the log index the snapshot reflects
	Bytes        int64
}

// Backup streams a consistent snapshot of the leader's state to w (restore it with stockd).
// Failures before the first byte are retried elsewhere; once bytes were written to w, a
// broken stream is an error, as w cannot be rewound.
func (c *Client) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	var info BackupInfo
	r := &request{method: http.MethodGet, path: "/v1/backup", route: toLeader}
	err := c.do(ctx, c.pool, r, func(resp *http.Response, e *Endpoint) error {
		info.Node = e.addr
		info.AppliedIndex, _ = strconv.ParseUint(resp.Header.Get(api.HeaderAppliedIndex), 10, 64)
		n, err := io.Copy(w, resp.Body)
		info.Bytes = n
		if err != nil {
			return fmt.Errorf("flashstock: backup from %s interrupted after %d bytes: %w", e.addr, n, err)
		}
		return nil
	})
	return info, err
}
