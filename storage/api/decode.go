package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/storage/model"
)

// decodeBody reads r's JSON body into dst, which must point to a struct or
// slice of this package's request types. An empty body is accepted when
// allowEmpty (LINSTOR takes a bodiless POST for rollback and an empty
// autoplace), leaving dst as it is.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) *apiError {
	// Socket deadlines are wall-clock instants for the kernel, not
	// timestamps of the cluster; the injected clock must not set them.
	ctl := http.NewResponseController(w)
	deadline := ctl.SetReadDeadline(time.Now().Add(h.opts.BodyReadTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		// The rest of the body is not worth reading: close the connection
		// after the answer instead of letting the server drain it (with
		// the deadline left in place, a drain could not hang either).
		w.Header().Set("Connection", "close")
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return errorf(http.StatusRequestEntityTooLarge, parseError,
				fmt.Sprintf("send at most %d bytes; LINSTOR requests are small JSON objects", mbe.Limit),
				"request body is larger than %d bytes", mbe.Limit)
		case errors.As(err, &ne) && ne.Timeout():
			return errorf(http.StatusRequestTimeout, parseError, "send the whole body promptly",
				"reading the request body timed out after %s", h.opts.BodyReadTimeout)
		}
		return errorf(http.StatusBadRequest, parseError, "resend the request", "reading the request body: %v", err)
	}
	if deadline {
		_ = ctl.SetReadDeadline(time.Time{})
	}
	return decodeJSON(body, dst, allowEmpty)
}

// decodeJSON is the body decoder proper, separate so that it can be fuzzed.
func decodeJSON(body []byte, dst any, allowEmpty bool) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return errorf(http.StatusBadRequest, parseError, "send a JSON object with the fields of this call",
			"request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err, dst)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, parseError, "send exactly one JSON value",
			"request body has data after the JSON value")
	}
	return nil
}

// jsonProblem turns a decoding error into a message that names what is
// wrong and, for an unknown field, which fields the call accepts.
func jsonProblem(err error, dst any) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var fe *fieldError
	msg := err.Error()
	switch {
	case errors.As(err, &se):
		return errorf(http.StatusBadRequest, parseError, "send valid JSON",
			"request body is not valid JSON: %s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the request body"
		}
		return errorf(http.StatusBadRequest, parseError, fmt.Sprintf("send %s as %s", field, jsonKind(te.Type)),
			"%s is a JSON %s, but must be %s", field, te.Value, jsonKind(te.Type))
	case errors.As(err, &fe):
		return errorf(http.StatusBadRequest, parseError, fe.fix, "%s", fe.msg)
	case strings.HasPrefix(msg, "json: unknown field "):
		name := strings.TrimPrefix(msg, "json: unknown field ")
		fields := strings.Join(jsonFields(reflect.TypeOf(dst)), ", ")
		return errorf(http.StatusBadRequest, parseError,
			"remove it or check its spelling; the top-level fields of this call are: "+fields,
			"unknown field %s in request body", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, parseError, "send the complete JSON value", "request body ends in the middle of a JSON value")
	}
	return errorf(http.StatusBadRequest, parseError, "send valid JSON with the fields of this call", "request body: %s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	}
	return "a " + t.String()
}

// jsonFields lists the JSON names of a struct type's fields.
func jsonFields(t reflect.Type) []string {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// fieldError is a value a flexible type refused.
type fieldError struct{ msg, fix string }

func (e *fieldError) Error() string { return e.msg }

// flexInt is a whole number that may arrive as a JSON string: the python
// client sends select_filter.place_count as "2".
type flexInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if unq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(unq)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return &fieldError{msg: fmt.Sprintf("value %s is not a whole number", string(b)), fix: "send a whole number such as 2"}
		}
		v = int64(f)
	}
	*n = flexInt(v)
	return nil
}

// flexSize is a size in KiB. The Proxmox plugin computes resize sizes as
// bytes/1024 in Perl, which arrives as a fraction when the byte count is
// not a multiple of 1024; a fraction is rounded up, since a disk must
// never come out smaller than asked for.
type flexSize int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *flexSize) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if unq, err := strconv.Unquote(s); err == nil {
		s = strings.TrimSpace(unq)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = flexSize(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<62 {
		return &fieldError{msg: fmt.Sprintf("size %s is not a number of KiB", string(b)), fix: "send sizes as whole numbers of KiB, e.g. 1048576 for 1 GiB"}
	}
	*n = flexSize(math.Ceil(f))
	return nil
}

// flexBool is a boolean that may arrive as "true"/"false".
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (v *flexBool) UnmarshalJSON(b []byte) error {
	s := string(b)
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes":
		*v = true
	case "false", "no", "null":
		*v = false
	default:
		return &fieldError{msg: fmt.Sprintf("value %s is not a boolean", string(b)), fix: "send true or false"}
	}
	return nil
}

// propMap is a property map whose values may arrive as numbers or
// booleans: the Proxmox plugin sends Aux/pm/vmid as a JSON number when Perl
// last used the vmid as a number. LINSTOR (Jackson) stores the text, and
// so does pvehci.
type propMap map[string]string

// UnmarshalJSON implements json.Unmarshaler.
func (p *propMap) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return &fieldError{msg: "properties must be a JSON object of key: value", fix: `send e.g. {"Aux/pm/vmid": "100"}`}
	}
	out := make(propMap, len(raw))
	for k, v := range raw {
		t := bytes.TrimSpace(v)
		switch {
		case len(t) > 0 && t[0] == '"':
			var s string
			if err := json.Unmarshal(t, &s); err != nil {
				return &fieldError{msg: fmt.Sprintf("property %q: %v", k, err), fix: "send property values as strings"}
			}
			out[k] = s
		case string(t) == "true" || string(t) == "false":
			out[k] = string(t)
		case len(t) > 0 && (t[0] == '-' || (t[0] >= '0' && t[0] <= '9')):
			var num json.Number
			if err := json.Unmarshal(t, &num); err != nil {
				return &fieldError{msg: fmt.Sprintf("property %q: %v", k, err), fix: "send property values as strings"}
			}
			out[k] = num.String()
		default:
			return &fieldError{msg: fmt.Sprintf("property %q has value %s, which is not a string, number or boolean", k, string(t)),
				fix: "send property values as strings; delete a property with delete_props"}
		}
	}
	*p = out
	return nil
}

func (p propMap) props() model.Props { return model.Props(p).Clone() }

// propsModify is LINSTOR's generic property change body.
type propsModify struct {
	OverrideProps    propMap  `json:"override_props"`
	DeleteProps      []string `json:"delete_props"`
	DeleteNamespaces []string `json:"delete_namespaces"`
}

func (m propsModify) change() model.PropsChange {
	return model.PropsChange{Set: m.OverrideProps.props(), Delete: slices.Clone(m.DeleteProps), DeleteNamespaces: slices.Clone(m.DeleteNamespaces)}
}
