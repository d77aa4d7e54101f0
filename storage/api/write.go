package api

import (
	"context"
	"net/http"
	"strings"

	linstor "github.com/LINBIT/golinstor"
	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/storage/model"
)

// change describes a changing call for mutate.
type change struct {
	obj    model.ObjectKind
	op     uint64 // linstor.MaskCrt, MaskMod or MaskDel
	refs   map[string]string
	status int // success status: 200, or 201 for creates
	// body, when not nil, receives the decoded request body.
	body       any
	allowEmpty bool
	// plan runs under h.mu: it validates and applies. It may return a
	// function that waits for completion outside the lock.
	plan func(ctx context.Context, c *call) (wait func(ctx context.Context) error, err error)
}

// mutate runs a changing call: decode, plan and apply under the lock,
// wait outside it, answer with the collected entries.
func (h *Handler) mutate(w http.ResponseWriter, r *http.Request, ch change) {
	c := h.newCall(w, r, ch.obj, ch.op, ch.refs)
	if ch.body != nil {
		if aerr := h.decodeBody(w, r, ch.body, ch.allowEmpty); aerr != nil {
			c.fail(aerr)
			return
		}
	}
	ctx := r.Context()
	wait, err := h.locked(func() (func(context.Context) error, error) { return ch.plan(ctx, c) })
	if err == nil && wait != nil {
		err = wait(ctx)
	}
	if err != nil {
		c.fail(err)
		return
	}
	c.reply(ch.status)
}

// locked runs plan under h.mu; the deferred unlock keeps the handler
// usable if plan panics (ServeHTTP turns the panic into a 500).
func (h *Handler) locked(plan func() (func(context.Context) error, error)) (func(context.Context) error, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return plan()
}

// simple applies one command and reports success with msg.
func (h *Handler) simple(w http.ResponseWriter, r *http.Request, ch change, build func(st *state.State) (state.Command, *apiError), code uint64, msg string) {
	ch.plan = func(ctx context.Context, c *call) (func(context.Context) error, error) {
		st, err := h.readState(ctx)
		if err != nil {
			return nil, err
		}
		cmd, aerr := build(st)
		if aerr != nil {
			return nil, aerr
		}
		if _, err := h.apply(ctx, c, cmd); err != nil {
			return nil, err
		}
		c.add(code, "%s", msg)
		return nil, nil
	}
	h.mutate(w, r, ch)
}

// created/modified/deleted are the success codes with their operation bits.
func created(obj model.ObjectKind) uint64  { return linstor.Created | objMask(obj) | linstor.MaskCrt }
func modified(obj model.ObjectKind) uint64 { return linstor.Modified | objMask(obj) | linstor.MaskMod }
func deleted(obj model.ObjectKind) uint64  { return linstor.Deleted | objMask(obj) | linstor.MaskDel }

func refs(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// ---- controller ----

func (h *Handler) modifyControllerProps(w http.ResponseWriter, r *http.Request) {
	var req propsModify
	h.simple(w, r, change{obj: model.ObjController, op: linstor.MaskMod, status: http.StatusOK, body: &req},
		func(*state.State) (state.Command, *apiError) {
			return &state.SetProps{Target: state.Target{Kind: model.ObjController}, Change: req.change()}, nil
		}, modified(model.ObjController), "controller properties modified")
}

func (h *Handler) deleteControllerProp(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	h.simple(w, r, change{obj: model.ObjController, op: linstor.MaskMod, status: http.StatusOK},
		func(*state.State) (state.Command, *apiError) {
			return &state.SetProps{Target: state.Target{Kind: model.ObjController}, Change: model.PropsChange{Delete: []string{key}}}, nil
		}, modified(model.ObjController), "controller property "+key+" deleted")
}

// ---- nodes ----

func (h *Handler) createNode(w http.ResponseWriter, r *http.Request) {
	var req nodeCreateRequest
	h.mutate(w, r, change{obj: model.ObjNode, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			c.refs = refs("Node", req.Name)
			if aerr := checkName(model.NameNode, req.Name); aerr != nil {
				return nil, aerr
			}
			if req.Type == "" {
				return nil, badRequest(linstor.FailInvldNodeType, "give type Satellite (or Combined, Controller, Auxiliary)", "node %s has no type", req.Name)
			}
			cmd := &state.CreateNode{Name: req.Name, NodeType: model.NodeType(req.Type), Props: req.Props.props()}
			for _, ni := range req.NetInterfaces {
				m := ni.model()
				id, err := h.newUUID()
				if err != nil {
					return nil, err
				}
				m.UUID = id
				cmd.NetInterfaces = append(cmd.NetInterfaces, m)
			}
			var err error
			if cmd.UUID, err = h.newUUID(); err != nil {
				return nil, err
			}
			if cmd.DisklessPoolUUID, err = h.newUUID(); err != nil {
				return nil, err
			}
			if _, err := h.apply(ctx, c, cmd); err != nil {
				return nil, err
			}
			c.add(created(model.ObjNode), "node %s registered", req.Name)
			return nil, nil
		}})
}

func (h *Handler) modifyNode(w http.ResponseWriter, r *http.Request) {
	var req nodeModifyRequest
	node := r.PathValue("node")
	h.simple(w, r, change{obj: model.ObjNode, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("Node", node)},
		func(*state.State) (state.Command, *apiError) {
			return &state.ModifyNode{Name: node, NodeType: model.NodeType(req.NodeType), Props: req.change()}, nil
		}, modified(model.ObjNode), "node "+node+" modified")
}

func (h *Handler) deleteNode(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	h.simple(w, r, change{obj: model.ObjNode, op: linstor.MaskDel, status: http.StatusOK, refs: refs("Node", node)},
		func(*state.State) (state.Command, *apiError) { return &state.DeleteNode{Name: node}, nil },
		deleted(model.ObjNode), "node "+node+" deleted")
}

func (h *Handler) createNetIf(w http.ResponseWriter, r *http.Request) {
	var req netIfRequest
	node := r.PathValue("node")
	h.mutate(w, r, change{obj: model.ObjNetInterface, op: linstor.MaskCrt, status: http.StatusCreated, body: &req, refs: refs("Node", node),
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			ni := req.model()
			id, err := h.newUUID()
			if err != nil {
				return nil, err
			}
			ni.UUID = id
			if _, err := h.apply(ctx, c, &state.CreateNetInterface{Node: node, NetInterface: ni}); err != nil {
				return nil, err
			}
			c.add(created(model.ObjNetInterface), "net interface %s created on node %s", ni.Name, node)
			return nil, nil
		}})
}

func (h *Handler) modifyNetIf(w http.ResponseWriter, r *http.Request) {
	var req netIfRequest
	node, name := r.PathValue("node"), r.PathValue("netif")
	h.simple(w, r, change{obj: model.ObjNetInterface, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("Node", node)},
		func(*state.State) (state.Command, *apiError) {
			if req.Name != "" && !model.SameName(req.Name, name) {
				return nil, badRequest(linstor.FailInvldNetName, "delete the interface and create one with the new name",
					"net interfaces cannot be renamed (%s to %s)", name, req.Name)
			}
			return &state.ModifyNetInterface{Node: node, Name: name, Address: req.Address, SatellitePort: int(req.SatellitePort),
				SatelliteEncryptionType: strings.ToUpper(req.SatelliteEncryptionType)}, nil
		}, modified(model.ObjNetInterface), "net interface "+name+" on node "+node+" modified")
}

func (h *Handler) deleteNetIf(w http.ResponseWriter, r *http.Request) {
	node, name := r.PathValue("node"), r.PathValue("netif")
	h.simple(w, r, change{obj: model.ObjNetInterface, op: linstor.MaskDel, status: http.StatusOK, refs: refs("Node", node)},
		func(*state.State) (state.Command, *apiError) {
			return &state.DeleteNetInterface{Node: node, Name: name}, nil
		},
		deleted(model.ObjNetInterface), "net interface "+name+" on node "+node+" deleted")
}

// poolProps turns LINSTOR's combined StorDriver/StorPoolName (what the
// python client sends: "vg/thinpool" or the zfs dataset) into the
// per-driver keys pvehci's satellite reads.
func poolProps(kind string, p model.Props) model.Props {
	p = p.Clone()
	name, ok := p[keyStorDriverStorPoolName]
	if !ok {
		return p
	}
	if p == nil {
		p = model.Props{}
	}
	switch strings.ToUpper(kind) {
	case string(model.ProviderLVMThin):
		if vg, thin, found := strings.Cut(name, "/"); found && p[model.KeyStorDriverLvmVg] == "" {
			p[model.KeyStorDriverLvmVg], p[model.KeyStorDriverThinPool] = vg, thin
		}
	case string(model.ProviderZFSThin):
		if p[model.KeyStorDriverZPoolThin] == "" {
			p[model.KeyStorDriverZPoolThin] = name
		}
	}
	delete(p, keyStorDriverStorPoolName)
	return p.Clone()
}

func (h *Handler) createPool(w http.ResponseWriter, r *http.Request) {
	var req poolCreateRequest
	node := r.PathValue("node")
	h.mutate(w, r, change{obj: model.ObjStoragePool, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			c.refs = refs("Node", node, "StorPool", req.StoragePoolName)
			if req.NodeName != "" && !model.SameName(req.NodeName, node) {
				return nil, badRequest(linstor.FailInvldNodeName, "leave node_name out or make it match the path",
					"node_name %q in the body does not match node %q in the path", req.NodeName, node)
			}
			cmd := &state.CreateStoragePool{Node: node, Name: req.StoragePoolName, ProviderKind: model.ProviderKind(strings.ToUpper(req.ProviderKind)),
				Props: poolProps(req.ProviderKind, req.Props.props()), SharedSpace: req.SharedSpace}
			var err error
			if cmd.UUID, err = h.newUUID(); err != nil {
				return nil, err
			}
			if cmd.DefinitionUUID, err = h.newUUID(); err != nil {
				return nil, err
			}
			if _, err := h.apply(ctx, c, cmd); err != nil {
				return nil, err
			}
			c.add(created(model.ObjStoragePool), "storage pool %s created on node %s", req.StoragePoolName, node)
			return nil, nil
		}})
}

func (h *Handler) modifyPool(w http.ResponseWriter, r *http.Request) {
	var req propsModify
	node, pool := r.PathValue("node"), r.PathValue("pool")
	h.simple(w, r, change{obj: model.ObjStoragePool, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("Node", node, "StorPool", pool)},
		func(*state.State) (state.Command, *apiError) {
			return &state.SetProps{Target: state.Target{Kind: model.ObjStoragePool, Node: node, StoragePool: pool}, Change: req.change()}, nil
		}, modified(model.ObjStoragePool), "storage pool "+pool+" on node "+node+" modified")
}

func (h *Handler) deletePool(w http.ResponseWriter, r *http.Request) {
	node, pool := r.PathValue("node"), r.PathValue("pool")
	h.simple(w, r, change{obj: model.ObjStoragePool, op: linstor.MaskDel, status: http.StatusOK, refs: refs("Node", node, "StorPool", pool)},
		func(*state.State) (state.Command, *apiError) {
			return &state.DeleteStoragePool{Node: node, Name: pool}, nil
		},
		deleted(model.ObjStoragePool), "storage pool "+pool+" on node "+node+" deleted")
}

func (h *Handler) createPoolDef(w http.ResponseWriter, r *http.Request) {
	var req poolDefCreateRequest
	h.mutate(w, r, change{obj: model.ObjStoragePoolDefinition, op: linstor.MaskCrt, status: http.StatusCreated, body: &req,
		plan: func(ctx context.Context, c *call) (func(context.Context) error, error) {
			c.refs = refs("StorPoolDfn", req.StoragePoolName)
			id, err := h.newUUID()
			if err != nil {
				return nil, err
			}
			if _, err := h.apply(ctx, c, &state.CreateStoragePoolDefinition{Name: req.StoragePoolName, Props: req.Props.props(), UUID: id}); err != nil {
				return nil, err
			}
			c.add(created(model.ObjStoragePoolDefinition), "storage pool definition %s created", req.StoragePoolName)
			return nil, nil
		}})
}

func (h *Handler) modifyPoolDef(w http.ResponseWriter, r *http.Request) {
	var req propsModify
	pool := r.PathValue("pool")
	h.simple(w, r, change{obj: model.ObjStoragePoolDefinition, op: linstor.MaskMod, status: http.StatusOK, body: &req, refs: refs("StorPoolDfn", pool)},
		func(*state.State) (state.Command, *apiError) {
			return &state.SetProps{Target: state.Target{Kind: model.ObjStoragePoolDefinition, StoragePool: pool}, Change: req.change()}, nil
		}, modified(model.ObjStoragePoolDefinition), "storage pool definition "+pool+" modified")
}

func (h *Handler) deletePoolDef(w http.ResponseWriter, r *http.Request) {
	pool := r.PathValue("pool")
	h.simple(w, r, change{obj: model.ObjStoragePoolDefinition, op: linstor.MaskDel, status: http.StatusOK, refs: refs("StorPoolDfn", pool)},
		func(*state.State) (state.Command, *apiError) {
			return &state.DeleteStoragePoolDefinition{Name: pool}, nil
		},
		deleted(model.ObjStoragePoolDefinition), "storage pool definition "+pool+" deleted")
}
