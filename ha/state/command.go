package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	linstor "github.com/LINBIT/golinstor"
)

// Command is one change of the replicated state, as it travels through the
// raft log. Every command validates completely in prepare, against the
// state as it is, before anything changes; prepare returns a commit
// function that cannot fail. A refused command therefore leaves the state
// exactly as it was.
//
// Commands carry everything that is not a pure function of the state:
// UUIDs, timestamps, DRBD secrets. The leader fills them in before it
// proposes, so that every replica computes the same result.
type Command interface {
	// Type is the command's name in the log envelope, e.g.
	// "CreateResourceDefinition". It never changes once released.
	Type() string
	prepare(s *State) (commit func(), res Result, err *Error)
}

// CommandVersion is the payload version every current command is written
// with. When a command's payload changes incompatibly, its version goes up
// and upgradePayload learns to rewrite the old payload; old log entries and
// snapshots must stay readable forever.
const CommandVersion = 1

// Apply runs cmd against the state. The result is deterministic: the same
// sequence of commands gives the same state and the same results on every
// replica.
func (s *State) Apply(cmd Command) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apply(cmd)
}

func (s *State) apply(cmd Command) Result {
	commit, res, err := cmd.prepare(s)
	if err != nil {
		return Result{Err: err}
	}
	commit()
	return res
}

// ApplyEncoded decodes a raft log entry and applies it. An entry this
// binary cannot decode gives a Result whose error is Unsupported (a newer
// version wrote it) or Invalid (corrupt bytes). The raft layer must stop
// applying on Unsupported rather than skip the entry: skipping would let
// this replica diverge from the ones that understood it.
func (s *State) ApplyEncoded(entry []byte) Result {
	cmd, err := Decode(entry)
	if err != nil {
		return Result{Err: err}
	}
	return s.Apply(cmd)
}

// Encode writes cmd as a log entry: a JSON object whose first members are
// the envelope, {"v":1,"type":"CreateNode",...payload}.
func Encode(cmd Command) ([]byte, error) {
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encoding %s command: %w", cmd.Type(), err)
	}
	if len(payload) < 2 || payload[0] != '{' {
		return nil, fmt.Errorf("encoding %s command: payload is not a JSON object", cmd.Type())
	}
	var b bytes.Buffer
	b.Grow(len(payload) + len(cmd.Type()) + 20)
	b.WriteString(`{"v":`)
	b.WriteString(strconv.Itoa(CommandVersion))
	b.WriteString(`,"type":`)
	t, _ := json.Marshal(cmd.Type())
	b.Write(t)
	if len(payload) > 2 {
		b.WriteByte(',')
	}
	b.Write(payload[1:])
	return b.Bytes(), nil
}

// Decode reads a log entry written by Encode. It refuses entries without an
// envelope, with a version or type this binary does not know, and with
// payload members the command does not have: ignoring a member a newer
// binary wrote would silently apply a different change than the leader did.
func Decode(entry []byte) (Command, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(entry, &raw); err != nil {
		return nil, decodeErr(Invalid, "log entry is not a JSON object: %v", err)
	}
	var v int
	var typ string
	if err := json.Unmarshal(raw["v"], &v); err != nil || raw["v"] == nil {
		return nil, decodeErr(Invalid, "log entry has no numeric envelope version \"v\"")
	}
	if err := json.Unmarshal(raw["type"], &typ); err != nil || typ == "" {
		return nil, decodeErr(Invalid, "log entry has no command \"type\"")
	}
	delete(raw, "v")
	delete(raw, "type")
	cmd := newCommand(typ)
	if cmd == nil {
		return nil, decodeErr(Unsupported, "command type %q is unknown to this binary; a newer pvehci wrote it, upgrade this node", typ)
	}
	if v < 1 || v > CommandVersion {
		return nil, decodeErr(Unsupported, "%s command has version %d, this binary reads versions 1 to %d; upgrade this node", typ, v, CommandVersion)
	}
	if err := upgradePayload(typ, v, raw); err != nil {
		return nil, decodeErr(Invalid, "upgrading %s command from version %d: %v", typ, v, err)
	}
	payload, err := json.Marshal(raw)
	if err != nil {
		return nil, decodeErr(Invalid, "re-encoding %s payload: %v", typ, err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cmd); err != nil {
		return nil, decodeErr(Invalid, "decoding %s command: %v", typ, err)
	}
	return cmd, nil
}

// upgradePayload rewrites an older payload of typ in place to the current
// version. With every command at version 1 there is nothing to do yet; a
// future version 2 of, say, CreateResource adds a case here that maps its
// version 1 members.
func upgradePayload(typ string, v int, raw map[string]json.RawMessage) error {
	_ = typ
	_ = raw
	if v == CommandVersion {
		return nil
	}
	return fmt.Errorf("no upgrade from version %d", v)
}

func decodeErr(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: linstor.FailInvldRequest, Message: fmt.Sprintf(format, args...),
		Correction: "this is a bug or a version mismatch between cluster nodes, not a user error"}
}

// newCommand returns a zero command of the named type, or nil. A switch
// rather than a registry map keeps the list in one place without a
// package-level variable.
func newCommand(typ string) Command {
	switch typ {
	case "SetProps":
		return &SetProps{}
	case "InitCluster":
		return &InitCluster{}
	case "IssueJoinToken":
		return &IssueJoinToken{}
	case "ConsumeJoinToken":
		return &ConsumeJoinToken{}
	case "RemoveMember":
		return &RemoveMember{}
	case "SetFlags":
		return &SetFlags{}
	case "CreateNode":
		return &CreateNode{}
	case "ModifyNode":
		return &ModifyNode{}
	case "DeleteNode":
		return &DeleteNode{}
	case "CreateNetInterface":
		return &CreateNetInterface{}
	case "ModifyNetInterface":
		return &ModifyNetInterface{}
	case "DeleteNetInterface":
		return &DeleteNetInterface{}
	case "CreateStoragePoolDefinition":
		return &CreateStoragePoolDefinition{}
	case "DeleteStoragePoolDefinition":
		return &DeleteStoragePoolDefinition{}
	case "CreateStoragePool":
		return &CreateStoragePool{}
	case "DeleteStoragePool":
		return &DeleteStoragePool{}
	case "CreateResourceGroup":
		return &CreateResourceGroup{}
	case "ModifyResourceGroup":
		return &ModifyResourceGroup{}
	case "DeleteResourceGroup":
		return &DeleteResourceGroup{}
	case "CreateVolumeGroup":
		return &CreateVolumeGroup{}
	case "DeleteVolumeGroup":
		return &DeleteVolumeGroup{}
	case "CreateResourceDefinition":
		return &CreateResourceDefinition{}
	case "ModifyResourceDefinition":
		return &ModifyResourceDefinition{}
	case "DeleteResourceDefinition":
		return &DeleteResourceDefinition{}
	case "CreateVolumeDefinition":
		return &CreateVolumeDefinition{}
	case "ModifyVolumeDefinition":
		return &ModifyVolumeDefinition{}
	case "DeleteVolumeDefinition":
		return &DeleteVolumeDefinition{}
	case "CreateResource":
		return &CreateResource{}
	case "DeleteResource":
		return &DeleteResource{}
	case "ToggleDisk":
		return &ToggleDisk{}
	case "CreateSnapshotDefinition":
		return &CreateSnapshotDefinition{}
	case "DeleteSnapshotDefinition":
		return &DeleteSnapshotDefinition{}
	case "AddJobSchedule":
		return &AddJobSchedule{}
	case "EditJobSchedule":
		return &EditJobSchedule{}
	case "RemoveJobSchedule":
		return &RemoveJobSchedule{}
	case "PauseJobSchedule":
		return &PauseJobSchedule{}
	case "ResumeJobSchedule":
		return &ResumeJobSchedule{}
	case "RequestJobRun":
		return &RequestJobRun{}
	case "RecordJobRun":
		return &RecordJobRun{}
	case "SetRelocationTimer":
		return &SetRelocationTimer{}
	case "UpdateRelocation":
		return &UpdateRelocation{}
	case "ClearRelocation":
		return &ClearRelocation{}
	}
	return nil
}

// CommandTypes lists every command type this binary knows, for tests and
// for the compatibility table in the docs.
func CommandTypes() []string {
	return []string{
		"SetProps", "SetFlags",
		"CreateNode", "ModifyNode", "DeleteNode", "CreateNetInterface", "ModifyNetInterface", "DeleteNetInterface",
		"CreateStoragePoolDefinition", "DeleteStoragePoolDefinition", "CreateStoragePool", "DeleteStoragePool",
		"CreateResourceGroup", "ModifyResourceGroup", "DeleteResourceGroup", "CreateVolumeGroup", "DeleteVolumeGroup",
		"CreateResourceDefinition", "ModifyResourceDefinition", "DeleteResourceDefinition",
		"CreateVolumeDefinition", "ModifyVolumeDefinition", "DeleteVolumeDefinition",
		"CreateResource", "DeleteResource", "ToggleDisk",
		"CreateSnapshotDefinition", "DeleteSnapshotDefinition",
		"AddJobSchedule", "EditJobSchedule", "RemoveJobSchedule", "PauseJobSchedule", "ResumeJobSchedule", "RequestJobRun", "RecordJobRun",
		"SetRelocationTimer", "UpdateRelocation", "ClearRelocation",
	}
}
