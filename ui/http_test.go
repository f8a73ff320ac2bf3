package ui_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/flashstock/flashstock/api"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

func getJSON(addr, path string, out any) error {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// call sends a JSON request and fails the test unless the answer has the wanted status.
func call(t *testing.T, method, addr, path string, body any, want int) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var e api.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("%s %s: HTTP %d %+v, want %d", method, path, resp.StatusCode, e.Error, want)
	}
}
