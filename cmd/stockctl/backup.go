package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func runBackup(args []string, stdout, stderr io.Writer) error {
	c := newCLI("backup", "backup --out FILE [flags]", `
Writes a consistent snapshot of the leader's state to FILE ("-" for standard output). The
file appears only once complete: an interrupted backup leaves no partial file behind.

examples:
  stockctl backup --out flashstock-$(date +%F).snap
  stockctl backup --out - | gzip > flashstock.snap.gz`, stdout, stderr)
	out := c.fs.String("out", "", "the file to write, or - for standard output (required)")
	if _, err := c.parse(args, 0, 0); err != nil {
		return err
	}
	if *out == "" {
		return c.usageError("--out is required (a file name, or - for standard output)")
	}
	cl, ctx, done, err := c.connect()
	if err != nil {
		return err
	}
	defer done()
	if *out == "-" {
		_, err := cl.Backup(ctx, stdout)
		return c.explain(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".partial-*")
	if err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	info, err := cl.Backup(ctx, tmp)
	if err != nil {
		tmp.Close()
		return c.explain(err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if c.json {
		return writeJSON(stdout, map[string]any{"file": *out, "bytes": info.Bytes, "applied_index": info.AppliedIndex, "node": info.Node})
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes, state at log index %d, from %s\n", *out, info.Bytes, info.AppliedIndex, info.Node)
	return nil
}
