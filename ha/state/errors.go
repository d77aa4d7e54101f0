package state

import (
	"fmt"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/storage/model"
)

// ErrorKind classifies why a command was refused. It is itself an error so
// that callers can test with errors.Is(err, state.NotFound).
type ErrorKind int

// Kinds of refusal. The REST layer maps them to HTTP statuses through the
// LINSTOR code in Error.Code (research §1.4: 300-399 → 404, the rest → 500).
const (
	Invalid     ErrorKind = iota + 1 // the request itself is wrong
	NotFound                         // an object it names does not exist
	Exists                           // the object it would create exists
	InUse                            // other objects still depend on it
	Exhausted                        // no port, minor, node id or number is free
	Unsupported                      // the log holds a command this binary does not know
)

func (k ErrorKind) Error() string {
	switch k {
	case Invalid:
		return "invalid request"
	case NotFound:
		return "not found"
	case Exists:
		return "already exists"
	case InUse:
		return "in use"
	case Exhausted:
		return "exhausted"
	case Unsupported:
		return "unsupported command"
	}
	return fmt.Sprintf("error kind %d", int(k))
}

// Error is a refused command. Message says what is wrong, Correction what
// to do about it; the REST layer shows them as an ApiCallRc's message and
// correction.
type Error struct {
	Kind   ErrorKind
	Object model.ObjectKind
	// Name identifies the object, e.g. "vm-100-disk-1" or "vm-100-disk-1 on pve1".
	Name string
	// Code is LINSTOR's ret_code for this failure, MASK_ERROR included
	// (a golinstor Fail* constant).
	Code       uint64
	Message    string
	Correction string
}

func (e *Error) Error() string {
	if e.Correction == "" {
		return e.Message
	}
	return e.Message + "; " + e.Correction
}

// Is makes errors.Is(err, state.NotFound) and friends work.
func (e *Error) Is(target error) bool {
	k, ok := target.(ErrorKind)
	return ok && k == e.Kind
}

// RetCode is the signed ret_code LINSTOR puts on the wire (errors arrive as
// negative numbers because the two type bits are the sign bits).
func (e *Error) RetCode() int64 { return int64(e.Code) }

func newErr(kind ErrorKind, obj model.ObjectKind, name string, code uint64, correction, format string, args ...any) *Error {
	return &Error{Kind: kind, Object: obj, Name: name, Code: code, Message: fmt.Sprintf(format, args...), Correction: correction}
}

func errInvalid(obj model.ObjectKind, name string, code uint64, err error) *Error {
	return &Error{Kind: Invalid, Object: obj, Name: name, Code: code, Message: err.Error()}
}

// errName turns a name validation error into an Error with the ret code
// LINSTOR uses for that kind of name.
func errName(obj model.ObjectKind, err error) *Error {
	code := uint64(linstor.FailInvldRequest)
	name := ""
	if ne, ok := err.(*model.NameError); ok {
		name = ne.Name
		switch ne.Kind {
		case model.NameNode:
			code = linstor.FailInvldNodeName
		case model.NameNetInterface:
			code = linstor.FailInvldNetName
		case model.NameStoragePool:
			code = linstor.FailInvldStorPoolName
		case model.NameResourceGroup:
			code = linstor.FailInvldRscGrpName
		case model.NameResourceDefinition:
			code = linstor.FailInvldRscName
		case model.NameSnapshot:
			code = linstor.FailInvldSnapshotName
		case model.NameJobSchedule:
			code = linstor.FailInvldScheduleName
		case model.NameResourceDefinitionExt:
			code = linstor.FailInvldExtName
		}
		return &Error{Kind: Invalid, Object: obj, Name: name, Code: code,
			Message: fmt.Sprintf("invalid %s name %q: %s", ne.Kind, ne.Name, ne.Problem), Correction: ne.Fix}
	}
	return errInvalid(obj, name, code, err)
}

func errNotFound(obj model.ObjectKind, name string) *Error {
	var code uint64
	var what, fix string
	switch obj {
	case model.ObjNode:
		code, what, fix = linstor.FailNotFoundNode, "node", "create the node first or check the spelling"
	case model.ObjNetInterface:
		code, what, fix = linstor.FailNotFoundNetIf, "net interface", "list the node's net interfaces"
	case model.ObjStoragePoolDefinition:
		code, what, fix = linstor.FailNotFoundStorPoolDfn, "storage pool definition", "create a storage pool of that name first"
	case model.ObjStoragePool:
		code, what, fix = linstor.FailNotFoundStorPool, "storage pool", "create the storage pool on that node first"
	case model.ObjResourceGroup:
		code, what, fix = linstor.FailNotFoundRscGrp, "resource group", "create the resource group first or check the spelling"
	case model.ObjVolumeGroup:
		code, what, fix = linstor.FailNotFoundVlmGrp, "volume group", "create the volume group first"
	case model.ObjResourceDefinition:
		code, what, fix = linstor.FailNotFoundRscDfn, "resource definition", "create the resource definition first or check the spelling"
	case model.ObjVolumeDefinition:
		code, what, fix = linstor.FailNotFoundVlmDfn, "volume definition", "create the volume definition first"
	case model.ObjResource:
		code, what, fix = linstor.FailNotFoundRsc, "resource", "create the resource on that node first"
	case model.ObjVolume:
		code, what, fix = linstor.FailNotFoundVlm, "volume", "check the volume number"
	case model.ObjSnapshotDefinition:
		code, what, fix = linstor.FailNotFoundSnapshotDfn, "snapshot", "list the resource definition's snapshots"
	case model.ObjJobSchedule:
		code, what, fix = linstor.FailNotFoundSchedule, "job schedule", "list the schedules with `pvehci schedule list`"
	default:
		code, what, fix = linstor.FailUnknownError, string(obj), ""
	}
	return &Error{Kind: NotFound, Object: obj, Name: name, Code: code,
		Message: fmt.Sprintf("%s %s does not exist", what, name), Correction: fix}
}

func errExists(obj model.ObjectKind, name string) *Error {
	var code uint64
	switch obj {
	case model.ObjNode:
		code = linstor.FailExistsNode
	case model.ObjNetInterface:
		code = linstor.FailExistsNetIf
	case model.ObjStoragePoolDefinition:
		code = linstor.FailExistsStorPoolDfn
	case model.ObjStoragePool:
		code = linstor.FailExistsStorPool
	case model.ObjResourceGroup:
		code = linstor.FailExistsRscGrp
	case model.ObjVolumeGroup:
		code = linstor.FailExistsVlmGrp
	case model.ObjResourceDefinition:
		code = linstor.FailExistsRscDfn
	case model.ObjVolumeDefinition:
		code = linstor.FailExistsVlmDfn
	case model.ObjResource:
		code = linstor.FailExistsRsc
	case model.ObjSnapshotDefinition:
		code = linstor.FailExistsSnapshotDfn
	case model.ObjJobSchedule:
		code = linstor.FailExistsSchedule
	default:
		code = linstor.FailUnknownError
	}
	return &Error{Kind: Exists, Object: obj, Name: name, Code: code,
		Message:    fmt.Sprintf("%s %s already exists", obj, name),
		Correction: "names are case-insensitive; choose another name or modify the existing object"}
}

func errInUse(obj model.ObjectKind, name, correction, format string, args ...any) *Error {
	return newErr(InUse, obj, name, linstor.FailInUse, correction, format, args...)
}

// Warning is a note on a command that succeeded, e.g. "deleted a property
// that was not set". Code is LINSTOR's WARN_* ret code.
type Warning struct {
	Code    uint64 `json:"code"`
	Message string `json:"message"`
}

// AllocKind says what kind of number an allocation handed out.
type AllocKind string

// Allocation kinds.
const (
	AllocMinor   AllocKind = "minor"    // per volume definition, cluster-wide
	AllocNodeID  AllocKind = "node-id"  // per resource, unique within its definition
	AllocTCPPort AllocKind = "tcp-port" // per resource, unique on its node
)

// Allocation is one number a command handed out.
type Allocation struct {
	Kind     AllocKind `json:"kind"`
	Resource string    `json:"resource"`
	Node     string    `json:"node,omitempty"`
	Volume   int       `json:"volume,omitempty"`
	Number   int       `json:"number"`
}

// Result is what Apply returns: an error (always an *Error) or success with
// what was allocated and any warnings.
type Result struct {
	Err       error
	Allocated []Allocation
	Warnings  []Warning
}
