package pvesim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Prefix is where pveproxy serves the JSON API.
const Prefix = "/api2/json"

// maxFinished is how many finished tasks per node /cluster/tasks keeps
// (RESTEnvironment's MAX_FINISHED, proxmox.md §4.3).
const maxFinished = 25

// apiError is an answer other than 200. PVE puts the message in the
// status line and, in its JSON formatter, in "message"; parameter errors
// come as "errors" keyed by parameter. Go cannot set a custom reason
// phrase, so here the message is only in the body.
type apiError struct {
	status int
	msg    string
	params map[string]string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badParam(name, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: "Parameter verification failed.", params: map[string]string{name: msg}}
}

// noConfig is what PVE answers for a VM whose config is not on the node
// the path names, whether the vmid is unknown or the VM lives elsewhere:
// HTTP 500, because the handler dies reading the file (there is no 404
// for it in qemu-server).
func noConfig(node string, vmid int) *apiError {
	return fail(http.StatusInternalServerError, "Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist", node, vmid)
}

type handlerFunc func(r *http.Request, user string) (any, *apiError)

// Handler returns the API as an http.Handler; mount it at the root (it
// serves paths under Prefix).
func (s *Sim) Handler() http.Handler {
	m := http.NewServeMux()
	route := func(pattern string, f handlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		m.HandleFunc(method+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
			user, aerr := s.authenticate(r)
			var data any
			if aerr == nil {
				data, aerr = f(r, user)
			}
			write(w, data, aerr)
		})
	}
	route("GET /version", s.version)
	route("GET /cluster/status", s.clusterStatus)
	route("GET /cluster/resources", s.clusterResources)
	route("GET /cluster/tasks", s.clusterTasks)
	route("GET /nodes", s.nodes)
	route("GET /nodes/{node}/qemu/{vmid}/config", s.node(s.vmConfig))
	route("GET /nodes/{node}/qemu/{vmid}/status/current", s.node(s.vmStatus))
	route("POST /nodes/{node}/qemu/{vmid}/migrate", s.node(s.migrate))
	route("GET /nodes/{node}/tasks", s.node(s.nodeTasks))
	route("GET /nodes/{node}/tasks/{upid}/status", s.node(s.taskStatus))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		write(w, nil, fail(http.StatusNotImplemented, "Method '%s %s' not implemented", r.Method, strings.TrimPrefix(r.URL.Path, Prefix)))
	})
	return m
}

func write(w http.ResponseWriter, data any, aerr *apiError) {
	body := map[string]any{"data": data}
	status := http.StatusOK
	if aerr != nil {
		status, body["data"], body["message"] = aerr.status, nil, aerr.msg+"\n"
		if aerr.params != nil {
			body["errors"] = aerr.params
		}
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// authenticate checks the API token header and returns the task user
// (user@realm!tokenid), or root@pam when authentication is off.
func (s *Sim) authenticate(r *http.Request) (string, *apiError) {
	if s.opts.Token == "" {
		return "root@pam", nil
	}
	h := r.Header.Get("Authorization")
	v, ok := strings.CutPrefix(h, "PVEAPIToken=")
	if !ok {
		return "", fail(http.StatusUnauthorized, "No ticket")
	}
	if subtle.ConstantTimeCompare([]byte(v), []byte(s.opts.Token)) != 1 {
		return "", fail(http.StatusUnauthorized, "invalid token value!")
	}
	id, _, _ := strings.Cut(v, "=")
	return id, nil
}

// node wraps a /nodes/{node}/… handler with pveproxy's proxying: an
// unknown node fails the name lookup, an offline one the connection.
func (s *Sim) node(f handlerFunc) handlerFunc {
	return func(r *http.Request, user string) (any, *apiError) {
		n := r.PathValue("node")
		s.mu.Lock()
		online, ok := s.online[n]
		s.mu.Unlock()
		if !ok {
			return nil, fail(http.StatusInternalServerError,
				"hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", n, n)
		}
		if !online {
			return nil, fail(595, "No route to host")
		}
		return f(r, user)
	}
}

func b01(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Sim) version(*http.Request, string) (any, *apiError) {
	return map[string]any{"version": "9.0.0", "release": "9.0", "repoid": "pvehcisim"}, nil
}

func (s *Sim) nodeIP(i int, n string) string {
	if ip, ok := s.opts.IPs[n]; ok {
		return ip
	}
	return "127.0.0." + strconv.Itoa(11+i)
}

func (s *Sim) clusterStatus(*http.Request, string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := 0
	for _, n := range s.opts.Nodes {
		up += b01(s.online[n])
	}
	out := []map[string]any{{"type": "cluster", "id": "cluster", "name": s.opts.ClusterName, "nodes": len(s.opts.Nodes),
		"quorate": b01(2*up > len(s.opts.Nodes)), "version": 1}}
	for i, n := range s.opts.Nodes {
		out = append(out, map[string]any{"type": "node", "id": "node/" + n, "name": n, "nodeid": i + 1,
			"ip": s.nodeIP(i, n), "online": b01(s.online[n]), "local": b01(n == s.opts.Local), "level": ""})
	}
	return out, nil
}

func (s *Sim) nodes(*http.Request, string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, n := range s.opts.Nodes {
		out = append(out, map[string]any{"node": n, "id": "node/" + n, "type": "node", "status": onlineWord(s.online[n]), "level": ""})
	}
	return out, nil
}

func onlineWord(b bool) string {
	if b {
		return "online"
	}
	return "offline"
}

func (s *Sim) clusterResources(r *http.Request, _ string) (any, *apiError) {
	typ := r.URL.Query().Get("type")
	if !slices.Contains([]string{"", "vm", "node", "storage", "sdn"}, typ) {
		return nil, badParam("type", "value '"+typ+"' does not have a value in the enumeration 'vm, storage, node, sdn'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	if typ == "" || typ == "node" {
		for _, n := range s.opts.Nodes {
			out = append(out, map[string]any{"id": "node/" + n, "type": "node", "node": n, "status": onlineWord(s.online[n])})
		}
	}
	if typ == "" || typ == "storage" {
		for _, n := range s.opts.Nodes {
			out = append(out, map[string]any{"id": "storage/" + n + "/" + s.opts.StorageID, "type": "storage",
				"storage": s.opts.StorageID, "node": n, "plugintype": "drbd", "shared": 1, "content": "images,rootdir",
				"status": map[bool]string{true: "available", false: "unknown"}[s.online[n]]})
		}
	}
	if typ == "" || typ == "vm" {
		for _, id := range s.vmids() {
			v := s.vms[id]
			e := map[string]any{"id": "qemu/" + strconv.Itoa(id), "type": "qemu", "vmid": id, "node": v.node,
				"name": v.name, "status": s.vmState(v), "template": 0, "maxdisk": v.maxDisk(), "uptime": s.uptime(v)}
			if v.lock != "" {
				e["lock"] = v.lock
			}
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *Sim) vmids() []int {
	ids := make([]int, 0, len(s.vms))
	for id := range s.vms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// vmState is the resource list's status: unknown when the node's
// pvestatd is not broadcasting.
func (s *Sim) vmState(v *vm) string {
	switch {
	case !s.online[v.node]:
		return "unknown"
	case v.running:
		return "running"
	}
	return "stopped"
}

func (s *Sim) uptime(v *vm) int64 {
	if !v.running {
		return 0
	}
	return int64(s.clk.Since(v.started).Seconds())
}

func (v *vm) maxDisk() int64 {
	var n int64
	for _, d := range v.disks {
		n += d.sizeKiB * 1024
	}
	return n
}

// vmAt returns the VM whose config is on node; s.mu must be held.
func (s *Sim) vmAt(r *http.Request) (*vm, *apiError) {
	node, raw := r.PathValue("node"), r.PathValue("vmid")
	vmid, err := strconv.Atoi(raw)
	if err != nil || vmid < 100 || vmid > 999999999 {
		return nil, badParam("vmid", "type check ('integer') failed - got '"+raw+"'")
	}
	v, ok := s.vms[vmid]
	if !ok || v.node != node {
		return nil, noConfig(node, vmid)
	}
	return v, nil
}

func (s *Sim) vmConfig(r *http.Request, _ string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmAt(r)
	if aerr != nil {
		return nil, aerr
	}
	return s.config(v), nil
}

func (s *Sim) vmStatus(r *http.Request, _ string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmAt(r)
	if aerr != nil {
		return nil, aerr
	}
	st := map[bool]string{true: "running", false: "stopped"}[v.running]
	out := map[string]any{"vmid": v.vmid, "name": v.name, "status": st, "qmpstatus": st, "uptime": s.uptime(v),
		"maxdisk": v.maxDisk(), "ha": map[string]any{"managed": 0}}
	if v.lock != "" {
		out["lock"] = v.lock
	}
	return out, nil
}

// params reads a POST's parameters: form-encoded as pvesh and most
// clients send them, or JSON.
func params(r *http.Request) (map[string]string, *apiError) {
	out := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var m map[string]any
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return nil, fail(http.StatusBadRequest, "reading request body: %v", err)
		}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fail(http.StatusBadRequest, "request body is not a JSON object: %v", err)
			}
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				out[k] = v
			case bool:
				out[k] = strconv.Itoa(b01(v))
			default:
				out[k] = fmt.Sprint(v)
			}
		}
		return out, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, fail(http.StatusBadRequest, "parsing parameters: %v", err)
	}
	for k := range r.Form {
		out[k] = r.Form.Get(k)
	}
	return out, nil
}

func pveBool(name, v string) (bool, *apiError) {
	switch strings.ToLower(v) {
	case "", "0", "no", "off", "false":
		return false, nil
	case "1", "yes", "on", "true":
		return true, nil
	}
	return false, badParam(name, "type check ('boolean') failed - got '"+v+"'")
}

func (s *Sim) migrate(r *http.Request, user string) (any, *apiError) {
	p, aerr := params(r)
	if aerr != nil {
		return nil, aerr
	}
	target := p["target"]
	if target == "" {
		return nil, badParam("target", "property is missing and it is not optional")
	}
	online, aerr := pveBool("online", p["online"])
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	v, aerr := s.vmAt(r)
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	t, v, err := s.beginMigrate(v.vmid, target, online, user)
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "%s", err.Error())
	}
	// The worker outlives the request, as a forked PVE worker does.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.runMigrate(context.Background(), t, v, target)
	}()
	return t.upid.String(), nil
}

func (t *task) entry() map[string]any {
	user, tokenid := splitUser(t.upid.User)
	e := map[string]any{"upid": t.upid.String(), "node": t.upid.Node, "pid": t.upid.PID, "pstart": t.upid.PStart,
		"starttime": t.upid.StartTime.Unix(), "type": t.upid.Type, "id": t.upid.ID, "user": user}
	if tokenid != "" {
		e["tokenid"] = tokenid
	}
	if !t.running {
		e["endtime"], e["status"] = t.end.Unix(), t.exit
	}
	return e
}

// nodeTasks is GET /nodes/{node}/tasks: newest first; source archive
// (default) lists finished tasks, active the running ones, all both.
func (s *Sim) nodeTasks(r *http.Request, _ string) (any, *apiError) {
	q := r.URL.Query()
	limit, start := 50, 0
	for name, dst := range map[string]*int{"limit": &limit, "start": &start} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, badParam(name, "type check ('integer') failed - got '"+v+"'")
			}
			*dst = n
		}
	}
	source := q.Get("source")
	if source == "" {
		source = "archive"
	}
	if !slices.Contains([]string{"archive", "active", "all"}, source) {
		return nil, badParam("source", "value '"+source+"' does not have a value in the enumeration 'archive, active, all'")
	}
	errorsOnly, aerr := pveBool("errors", q.Get("errors"))
	if aerr != nil {
		return nil, aerr
	}
	node := r.PathValue("node")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, t := range slices.Backward(s.tasks) {
		switch {
		case t.upid.Node != node,
			source == "archive" && t.running, source == "active" && !t.running,
			q.Get("typefilter") != "" && t.upid.Type != q.Get("typefilter"),
			q.Get("vmid") != "" && t.upid.ID != q.Get("vmid"),
			errorsOnly && (t.running || t.exit == "OK"):
			continue
		}
		out = append(out, t.entry())
	}
	out = out[min(start, len(out)):]
	return out[:min(limit, len(out))], nil
}

// clusterTasks is GET /cluster/tasks: per node the running tasks and the
// last maxFinished finished ones, newest first.
func (s *Sim) clusterTasks(*http.Request, string) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	finished := map[string]int{}
	out := []map[string]any{}
	for _, t := range slices.Backward(s.tasks) {
		if !t.running {
			if finished[t.upid.Node] >= maxFinished {
				continue
			}
			finished[t.upid.Node]++
		}
		out = append(out, t.entry())
	}
	return out, nil
}

func (s *Sim) taskStatus(r *http.Request, _ string) (any, *apiError) {
	raw := r.PathValue("upid")
	u, err := ParseUPID(raw)
	if err != nil {
		return nil, badParam("upid", err.Error())
	}
	if u.Node != r.PathValue("node") {
		return nil, badParam("upid", "upid does not belong to node '"+r.PathValue("node")+"'")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tasks {
		if t.upid.String() == raw {
			e := t.entry()
			delete(e, "endtime")
			delete(e, "status")
			e["status"] = "running"
			if !t.running {
				e["status"], e["exitstatus"] = "stopped", t.exit
			}
			return e, nil
		}
	}
	// PVE reads the task's log file and dies when it is missing.
	return nil, fail(http.StatusInternalServerError, "unable to open file '/var/log/pve/tasks/%X/%s' - No such file or directory",
		u.StartTime.Unix()&0xf, raw)
}
