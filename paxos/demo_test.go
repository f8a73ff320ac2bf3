package paxos

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestDemo_Golden locks the demo's output: the same flags and seed must print the same
// trace, byte for byte. After an intended change, rerun with -update and read the diff.
func TestDemo_Golden(t *testing.T) {
	tests := []struct {
		file string
		cfg  DemoConfig
	}{
		{"single.txt", DemoConfig{Mode: "single", Acceptors: 3, Proposers: 2, Seed: 1, Format: "text"}},
		{"single_lossy_crash.txt", DemoConfig{Mode: "single", Acceptors: 3, Proposers: 2, Drop: 0.2, Duplicate: 0.1, Crash: true, Seed: 4, Format: "text"}},
		{"single_partition.mmd", DemoConfig{Mode: "single", Acceptors: 3, Proposers: 2, Partition: true, Seed: 1, Format: "mermaid"}},
		{"multi_crash.txt", DemoConfig{Mode: "multi", Acceptors: 3, Proposers: 3, Drop: 0.1, Crash: true, Seed: 3, Format: "text"}},
		{"multi_partition.txt", DemoConfig{Mode: "multi", Acceptors: 5, Proposers: 5, Partition: true, Seed: 2, Format: "text"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var out bytes.Buffer
			if err := RunDemo(&out, tt.cfg); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.file+".golden")
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s; rerun with -update if the change is intended.\ngot:\n%s", path, out.String())
			}
		})
	}
}

func TestDemo_SameSeedSameOutput(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := DemoConfig{Mode: "multi", Acceptors: 3, Proposers: 2, Drop: 0.2, Duplicate: 0.2, Crash: true, Partition: true, Seed: seed, Format: "text"}
		var a, b bytes.Buffer
		if err := RunDemo(&a, cfg); err != nil {
			t.Fatal(err)
		}
		if err := RunDemo(&b, cfg); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("seed %d: two runs printed different traces", seed)
		}
	}
}

func TestDemoConfig_ValidateNamesEveryRule(t *testing.T) {
	err := DemoConfig{Mode: "x", Acceptors: 0, Proposers: 0, Drop: 1, Format: "svg"}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, word := range []string{"mode", "acceptors", "proposers", "drop", "format"} {
		if !bytes.Contains([]byte(err.Error()), []byte(word)) {
			t.Errorf("error does not mention %s: %v", word, err)
		}
	}
}
