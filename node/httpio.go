package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/flashstock/flashstock/api"
)

// maxBody is the largest request body accepted; larger ones get 413.
const maxBody = 1 << 20

// readBody reads a whole request body, refusing more than maxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= maxBody {
		// The server ends the body at its declared length: it is read in one buffer of that
		// size, with no limit to wrap it in (one allocation, not three and 512 bytes).
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, api.Errorf(api.InvalidArgument, "read body: %v", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, api.Errorf(api.InvalidArgument, "read body: %v", err)
	}
	return b, nil
}

// readRequest reads a request body and decodes it strictly into v; it returns the raw body
// too, for forwarding it unchanged to the leader.
func readRequest(w http.ResponseWriter, r *http.Request, v any) ([]byte, error) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	return body, decodeStrict(body, v)
}

// readBatchRequest reads a batch in the encoding its Content-Type names, with readRequest's
// body limit and strictness for either; it returns the raw body too, for forwarding.
func readBatchRequest(w http.ResponseWriter, r *http.Request) (api.BatchDeductRequest, []byte, error) {
	if !api.IsMediaType(r.Header.Get("Content-Type"), api.BatchContentType) {
		var req api.BatchDeductRequest
		body, err := readRequest(w, r, &req)
		return req, body, err
	}
	body, err := readBody(w, r)
	if err != nil {
		return api.BatchDeductRequest{}, nil, err
	}
	req, err := api.DecodeBatchDeductRequest(body)
	return req, body, err
}

// writeBatchAnswer answers a batch in binary to a client whose Accept names it, in JSON to
// every other. Only this 200 answer has two encodings: errors of the whole request keep
// the one JSON error body.
func writeBatchAnswer(w http.ResponseWriter, r *http.Request, out *api.BatchDeductResponse) {
	if !accepts(r, api.BatchContentType) {
		writeJSON(w, http.StatusOK, out)
		return
	}
	b := api.AppendBatchDeductResponse(nil, out)
	w.Header().Set("Content-Type", api.BatchContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// accepts reports whether r's Accept headers name mediaType.
func accepts(r *http.Request, mediaType string) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if api.IsMediaType(part, mediaType) {
				return true
			}
		}
	}
	return false
}

var errTooLarge = &api.Error{Code: api.InvalidArgument, Message: fmt.Sprintf("request body larger than %d bytes", maxBody)}

// decodeStrict decodes exactly one JSON object: unknown fields, wrong types, trailing data
// and an empty body are all invalid_argument.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return api.Errorf(api.InvalidArgument, "request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.InvalidArgument, "%s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return api.Errorf(api.InvalidArgument, "malformed JSON: trailing data after the object")
	}
	return nil
}

// describeJSONError says what is wrong with a request body in the contract's terms: the
// JSON field and what it must be, never the Go types behind it (encoding/json's own
// messages name them: "cannot unmarshal string into Go struct field DeductRequest.qty of
// type int64").
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return "the body must be a JSON object"
		}
		return fmt.Sprintf("%s: must be %s", field, jsonKind(typeErr.Type))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends inside a value"
	}
	// DisallowUnknownFields' error has no type of its own: `json: unknown field "x"`.
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + field
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names what a request field holds, in JSON's words.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a valid value"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	startJSON(w, status)
	_ = json.NewEncoder(w).Encode(v)
}

// startJSON writes the status and headers of a JSON answer.
func startJSON(w http.ResponseWriter, status int) {
	// One shared value: Header().Set would allocate a slice for every answer. The server
	// copies the header when it writes it, and nothing here writes into the slice.
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
}

var jsonContentType = []string{"application/json"}

// writeDeductAnswer answers a successful deduction with what writeJSON would write for a,
// without reflection: every plain-HTTP deduction ends here.
func writeDeductAnswer(w http.ResponseWriter, a api.DeductResponse) {
	b := a.AppendJSON(make([]byte, 0, 64))
	b = append(b, '\n') // json.Encoder ends every value with one
	startJSON(w, http.StatusOK)
	_, _ = w.Write(b)
}

// writeError writes the contract's error body with the status of its code.
// A leader it names is that of the group the answer says it is about (nameGroup), else
// the cluster group's.
func (n *Node) writeError(w http.ResponseWriter, err error) {
	e := n.mapError(err, w)
	status := e.Code.HTTPStatus()
	if err == errTooLarge {
		status = http.StatusRequestEntityTooLarge
	}
	if e.Code == api.Overloaded {
		w.Header().Set("Retry-After", "1")
	}
	if status >= 500 && e.Code == api.Internal {
		n.log.Error("internal error", "error", err)
	}
	writeJSON(w, status, api.ErrorBody{Error: e})
}

// readAPIError returns nil for a 2xx answer and the decoded error body otherwise; it
// consumes and closes the body.
func readAPIError(resp *http.Response) *api.Error {
	return readJSON(resp, nil)
}

// readJSON decodes a 2xx answer into out (when not nil) and returns nil, or returns the
// decoded error body of any other answer; it consumes and closes the body.
func readJSON(resp *http.Response, out any) *api.Error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode/100 == 2 {
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				return &api.Error{Code: api.Internal, Message: fmt.Sprintf("decode answer: %v", err)}
			}
		}
		return nil
	}
	var eb api.ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		return eb.Error
	}
	return &api.Error{Code: api.Internal, Message: fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, body)}
}

// setReadHeaders says how fresh the state of g behind a read is.
func setReadHeaders(w http.ResponseWriter, g groupStore) {
	w.Header().Set(api.HeaderAppliedIndex, strconv.FormatUint(g.state().AppliedIndex(), 10))
	w.Header().Set(api.HeaderLastContactMS, strconv.FormatInt(g.lastContactMS(), 10))
}
