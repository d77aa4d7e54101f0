package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/model"
	"github.com/pvehci/pvehci/storage/placement"
)

// ApiCallRc is one entry of LINSTOR's answer to a changing call. RetCode
// packs the type (error, warning, info, success), the operation and the
// object kind with the code (research linstor-server.md §1.4); errors are
// negative because their type bits are the sign bit.
type ApiCallRc struct {
	RetCode        int64             `json:"ret_code"`
	Message        string            `json:"message"`
	Cause          string            `json:"cause,omitempty"`
	Details        string            `json:"details,omitempty"`
	Correction     string            `json:"correction,omitempty"`
	ErrorReportIDs []string          `json:"error_report_ids,omitempty"`
	ObjRefs        map[string]string `json:"obj_refs,omitempty"`
	CreatedAt      string            `json:"created_at,omitempty"`
}

// Codes the API uses that golinstor names differently or not at all.
const (
	unknownAPICall = linstor.UnknownApiCall
	parseError     = linstor.ApiCallParseError
	failUnknown    = linstor.FailUnknownError
)

// rc builds an entry with code and a formatted message.
func rc(code uint64, format string, args ...any) ApiCallRc {
	return ApiCallRc{RetCode: int64(code), Message: fmt.Sprintf(format, args...)}
}

// apiError is a refused request: the HTTP status and the entry explaining
// it.
type apiError struct {
	status int
	rc     ApiCallRc
	fix    string // correction, if rc has none
	// extra entries that came before the failure (e.g. what a multi-step
	// call had already done).
	before []ApiCallRc
}

func (e *apiError) Error() string { return e.rc.Message }

func errorf(status int, code uint64, fix, format string, args ...any) *apiError {
	return &apiError{status: status, rc: rc(code, format, args...), fix: fix}
}

// statusOfKind maps a state refusal to HTTP. LINSTOR itself maps by code
// range (404 for 3xx codes, else 500); pvehci distinguishes the client's
// mistakes from conflicts and from its own failures, which golinstor and
// the python client handle the same way (any non-2xx with an ApiCallRc
// list), and which tells curl users and the Proxmox log what happened.
func statusOfKind(k state.ErrorKind) int {
	switch k {
	case state.Invalid:
		return http.StatusBadRequest
	case state.NotFound:
		return http.StatusNotFound
	case state.Exists, state.InUse, state.Exhausted:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// kindFix is the correction for a state refusal that brings none.
func kindFix(k state.ErrorKind) string {
	switch k {
	case state.Invalid:
		return "correct the value the message names and send the request again"
	case state.NotFound:
		return "check the names in the request; list the objects with the matching GET call"
	case state.Exists:
		return "choose another name (names are case-insensitive) or modify the existing object"
	case state.InUse:
		return "remove what still uses the object first"
	case state.Exhausted:
		return "free numbers by deleting unused objects, or widen the controller's ranges"
	}
	return "check the pvehci daemon log on the leader"
}

// objMask is LINSTOR's object bits for a model object kind.
func objMask(k model.ObjectKind) uint64 {
	switch k {
	case model.ObjController:
		return linstor.MaskCtrlConf
	case model.ObjNode:
		return linstor.MaskNode
	case model.ObjNetInterface:
		return linstor.MaskNetIf
	case model.ObjStoragePoolDefinition:
		return linstor.MaskStorPoolDfn
	case model.ObjStoragePool:
		return linstor.MaskStorPool
	case model.ObjResourceGroup:
		return linstor.MaskRscGrp
	case model.ObjVolumeGroup:
		return linstor.MaskVlmGrp
	case model.ObjResourceDefinition:
		return linstor.MaskRscDfn
	case model.ObjVolumeDefinition:
		return linstor.MaskVlmDfn
	case model.ObjResource:
		return linstor.MaskRsc
	case model.ObjVolume:
		return linstor.MaskVlm
	case model.ObjSnapshotDefinition:
		return linstor.MaskSnapshot
	}
	return 0
}

// call is one changing request: it collects ApiCallRc entries and writes
// them with the right status.
type call struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	obj  uint64 // object bits of the call's main object
	op   uint64 // operation bits
	refs map[string]string
	out  []ApiCallRc
}

func (h *Handler) newCall(w http.ResponseWriter, r *http.Request, obj model.ObjectKind, op uint64, refs map[string]string) *call {
	return &call{h: h, w: w, r: r, obj: objMask(obj), op: op, refs: refs}
}

// add appends an entry; type bits come with code, object and operation
// bits from the call unless code already has object bits.
func (c *call) add(code uint64, format string, args ...any) {
	e := rc(code, format, args...)
	c.out = append(c.out, c.stamp(e))
}

// addFix is add with a correction.
func (c *call) addFix(code uint64, fix, format string, args ...any) {
	e := rc(code, format, args...)
	e.Correction = fix
	c.out = append(c.out, c.stamp(e))
}

func (c *call) stamp(e ApiCallRc) ApiCallRc {
	code := uint64(e.RetCode)
	if code&linstor.MaskBitsObj == 0 {
		code |= c.obj
	}
	if code&linstor.MaskBitsOp == 0 {
		code |= c.op
	}
	e.RetCode = int64(code)
	if e.ObjRefs == nil && len(c.refs) > 0 {
		e.ObjRefs = c.refs
	}
	if e.CreatedAt == "" {
		e.CreatedAt = c.h.opts.Clock.Now().Format(time.RFC3339Nano)
	}
	return e
}

// warnings turns a state result's warnings into entries.
func (c *call) warnings(res state.Result) {
	for _, w := range res.Warnings {
		c.add(w.Code, "%s", w.Message)
	}
}

// reply writes the collected entries with status.
func (c *call) reply(status int) {
	if c.out == nil {
		c.out = []ApiCallRc{}
	}
	writeJSON(c.w, status, c.out)
}

// fail writes err as the call's answer, after the entries collected so
// far (so that a multi-step call says what it did before it failed).
func (c *call) fail(err error) {
	ae := c.h.toAPIError(err)
	e := ae.rc
	if e.Correction == "" {
		e.Correction = ae.fix
	}
	entries := append(append(c.out, ae.before...), c.stamp(e))
	if ae.status >= 500 {
		c.h.log.Warn("request failed", "method", c.r.Method, "path", c.r.URL.Path, "status", ae.status, "err", err)
	} else {
		c.h.log.Debug("request refused", "method", c.r.Method, "path", c.r.URL.Path, "status", ae.status, "err", err)
	}
	writeJSON(c.w, ae.status, entries)
}

// toAPIError classifies any error the handlers meet.
func (h *Handler) toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var se *state.Error
	if errors.As(err, &se) {
		e := rc(se.Code|objMask(se.Object), "%s", se.Message)
		e.Correction = se.Correction
		return &apiError{status: statusOfKind(se.Kind), rc: e, fix: kindFix(se.Kind)}
	}
	var pe *placement.Error
	if errors.As(err, &pe) {
		return &apiError{status: http.StatusConflict, rc: rc(pe.Code(), "%s", pe.Error()), fix: pe.Correction()}
	}
	return &apiError{status: http.StatusInternalServerError, rc: rc(failUnknown, "%s", err.Error()),
		fix: "the controller could not complete the request; check the pvehci daemon log on the leader and retry"}
}

// writeFailure answers a request that failed before a call existed.
func writeFailure(w http.ResponseWriter, clk clock.Clock, e *apiError) {
	r := e.rc
	if r.Correction == "" {
		r.Correction = e.fix
	}
	r.CreatedAt = clk.Now().Format(time.RFC3339Nano)
	writeJSON(w, e.status, append(e.before, r))
}

// writeJSON writes v with status, streaming: a view of 10,000 resources
// is ~18 MB, which need not exist in memory twice. The response types
// hold only strings, numbers, maps, slices and structs of them, so
// encoding cannot fail half-way except on a broken connection, which
// nobody is left to tell.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	bw := bufio.NewWriterSize(w, 32<<10)
	_ = json.NewEncoder(bw).Encode(v)
	_ = bw.Flush()
}

// fail answers a read request that failed.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	c := h.newCall(w, r, "", 0, nil)
	c.fail(err)
}
