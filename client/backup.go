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
	return c.backup(ctx, c.pool, "/v1/backup", w)
}

// BackupGroup is Backup of one data group: a multi-group cluster's state is its data
// groups' states, each backed up on its own (group 1 of a single-group cluster is what
// Backup writes). It asks the group's leader when the client knows it, else any node,
// which names the node to ask when it hosts no replica of the group.
func (c *Client) BackupGroup(ctx context.Context, group uint64, w io.Writer) (BackupInfo, error) {
	return c.backup(ctx, c.router.knownPool(group), "/v1/backup?group="+strconv.FormatUint(group, 10), w)
}

func (c *Client) backup(ctx context.Context, p *pool, path string, w io.Writer) (BackupInfo, error) {
	var info BackupInfo
	r := &request{method: http.MethodGet, path: path, route: toLeader}
	err := c.do(ctx, p, r, func(resp *http.Response, e *Endpoint) error {
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
