package api_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"

	linstor "github.com/LINBIT/golinstor"
	lc "github.com/LINBIT/golinstor/client"
	"github.com/pvehci/pvehci/storage/model"
)

func (e *env) golinstor() *lc.Client {
	e.t.Helper()
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := lc.NewClient(lc.BaseURL(u), lc.HTTPClient(e.srv.Client()), lc.Log(nil))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// TestGolinstorLifecycle drives a whole lifecycle through golinstor
// v0.63.0, the client LINBIT's Go tools use: it proves the paths, bodies,
// status codes and error shapes golinstor expects.
func TestGolinstorLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.golinstor()
	ctx := context.Background()
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Nodes with net interfaces and storage pools.
	for i, n := range []string{"pve1", "pve2", "pve3"} {
		ok("create node", c.Nodes.Create(ctx, lc.Node{Name: n, Type: linstor.ValNodeTypeStlt,
			NetInterfaces: []lc.NetInterface{{Name: "default", Address: net.ParseIP("10.0.0." + string(rune('1'+i))), SatellitePort: 3366, SatelliteEncryptionType: "plain"}}}))
		ok("create pool", c.Nodes.CreateStoragePool(ctx, n, lc.StoragePool{StoragePoolName: "thin", ProviderKind: lc.LVM_THIN,
			Props: map[string]string{"StorDriver/LvmVg": "pve", "StorDriver/ThinPool": "data"}}))
	}
	ok("create netif", c.Nodes.CreateNetInterface(ctx, "pve1", lc.NetInterface{Name: "storage", Address: net.ParseIP("192.168.10.1")}))
	nifs, err := c.Nodes.GetNetInterfaces(ctx, "pve1")
	ok("get netifs", err)
	if len(nifs) != 2 || nifs[0].Name != "default" || !nifs[0].IsActive || nifs[1].Address.String() != "192.168.10.1" {
		t.Fatalf("net interfaces = %+v", nifs)
	}
	nodes, err := c.Nodes.GetAll(ctx)
	ok("list nodes", err)
	if len(nodes) != 3 || nodes[0].Type != "SATELLITE" || nodes[0].ConnectionStatus != "ONLINE" {
		t.Fatalf("nodes = %+v", nodes)
	}
	if _, err := c.Nodes.Get(ctx, "nope"); !errors.Is(err, lc.NotFoundError) {
		t.Fatalf("get missing node: %v, want NotFoundError", err)
	}
	err = c.Nodes.Create(ctx, lc.Node{Name: "pve1", Type: "Satellite", NetInterfaces: []lc.NetInterface{{Name: "default", Address: net.ParseIP("10.0.0.9")}}})
	if !lc.IsApiCallError(err, linstor.FailExistsNode) {
		t.Fatalf("duplicate node: %v, want FailExistsNode", err)
	}
	sp, err := c.Nodes.GetStoragePool(ctx, "pve2", "thin")
	ok("get pool", err)
	if sp.ProviderKind != lc.LVM_THIN || sp.FreeCapacity == 0 || sp.Props["StorDriver/StorPoolName"] != "pve/data" {
		t.Fatalf("pool = %+v", sp)
	}
	view, err := c.Nodes.GetStoragePoolView(ctx, &lc.ListOpts{Node: []string{"pve3"}})
	ok("pool view", err)
	if len(view) != 2 { // thin and DfltDisklessStorPool
		t.Fatalf("pool view for pve3 = %+v", view)
	}
	spds, err := c.StoragePoolDefinitions.GetAll(ctx)
	ok("pool definitions", err)
	if len(spds) != 3 {
		t.Fatalf("storage pool definitions = %+v", spds)
	}

	// Resource group, volume group, spawn.
	ok("create rg", c.ResourceGroups.Create(ctx, lc.ResourceGroup{Name: "drbdgrp", SelectFilter: lc.AutoSelectFilter{PlaceCount: 2, StoragePool: "thin"}}))
	ok("create vg", c.ResourceGroups.CreateVolumeGroup(ctx, "drbdgrp", lc.VolumeGroup{}))
	ok("modify rg", c.ResourceGroups.Modify(ctx, "drbdgrp", lc.ResourceGroupModify{Description: "proxmox", OverrideProps: map[string]string{"Aux/x": "1"}}))
	rg, err := c.ResourceGroups.Get(ctx, "drbdgrp")
	ok("get rg", err)
	if rg.SelectFilter.PlaceCount != 2 || rg.SelectFilter.StoragePool != "thin" || rg.Description != "proxmox" || rg.Props["Aux/x"] != "1" {
		t.Fatalf("modify with an empty select_filter must keep the filter: %+v", rg)
	}
	ok("spawn", c.ResourceGroups.Spawn(ctx, "drbdgrp", lc.ResourceGroupSpawn{ResourceDefinitionName: "vm-100-disk-1", VolumeSizes: []int64{1 << 20}}))
	err = c.ResourceGroups.Spawn(ctx, "drbdgrp", lc.ResourceGroupSpawn{ResourceDefinitionName: "vm-100-disk-1", VolumeSizes: []int64{1 << 20}})
	if !lc.IsApiCallError(err, linstor.FailExistsRscDfn) {
		t.Fatalf("duplicate spawn: %v, want FailExistsRscDfn", err)
	}
	rscs, err := c.Resources.GetResourceView(ctx, &lc.ListOpts{Resource: []string{"vm-100-disk-1"}})
	ok("view", err)
	diskful, tb := 0, 0
	for _, r := range rscs {
		switch {
		case hasFlag(r.Flags, model.RscFlagTieBreaker):
			tb++
		case len(r.Volumes) == 1 && r.Volumes[0].ProviderKind == lc.LVM_THIN && r.Volumes[0].State.DiskState == "UpToDate":
			diskful++
		}
		if r.LayerObject == nil || r.LayerObject.Drbd == nil || len(r.LayerObject.Drbd.DrbdVolumes) != 1 {
			t.Fatalf("resource %s on %s lacks DRBD layer data: %+v", r.Name, r.NodeName, r.LayerObject)
		}
	}
	if len(rscs) != 3 || diskful != 2 || tb != 1 {
		t.Fatalf("after spawn want 2 diskful + 1 tie-breaker, got %d resources (%d diskful, %d tb): %+v", len(rscs), diskful, tb, rscs)
	}
	rd, err := c.ResourceDefinitions.Get(ctx, "vm-100-disk-1")
	ok("get rd", err)
	if rd.ResourceGroupName != "drbdgrp" || len(rd.LayerData) == 0 || rd.LayerData[0].Type != "DRBD" {
		t.Fatalf("rd = %+v", rd)
	}
	rds, err := c.ResourceDefinitions.GetAll(ctx, lc.RDGetAllRequest{WithVolumeDefinitions: true})
	ok("list rds", err)
	if len(rds) != 1 || len(rds[0].VolumeDefinitions) != 1 || rds[0].VolumeDefinitions[0].SizeKib != 1<<20 {
		t.Fatalf("rds = %+v", rds)
	}

	// Make available on the third node: the tie-breaker there becomes a
	// diskless resource; a diskless primary is the VM's attachment.
	tbNode := ""
	for _, r := range rscs {
		if hasFlag(r.Flags, model.RscFlagTieBreaker) {
			tbNode = r.NodeName
		}
	}
	ok("make available", c.Resources.MakeAvailable(ctx, "vm-100-disk-1", tbNode, lc.ResourceMakeAvailable{}))
	r3, err := c.Resources.Get(ctx, "vm-100-disk-1", tbNode)
	ok("get resource", err)
	if hasFlag(r3.Flags, model.RscFlagTieBreaker) || !hasFlag(r3.Flags, model.RscFlagDrbdDiskless) {
		t.Fatalf("after make-available the tie-breaker must be a plain diskless resource: %v", r3.Flags)
	}
	// Deleting it with keep_tiebreaker keeps it as the tie-breaker.
	ok("delete keep tb", c.Resources.Delete(ctx, "vm-100-disk-1", tbNode, &lc.ResourceDeleteOpts{KeepTiebreaker: true}))
	r3, err = c.Resources.Get(ctx, "vm-100-disk-1", tbNode)
	ok("get resource after delete", err)
	if !hasFlag(r3.Flags, model.RscFlagTieBreaker) {
		t.Fatalf("diskless resource must be taken over as tie-breaker: %v", r3.Flags)
	}
	// Again: a tie-breaker with keep_tiebreaker stays.
	ok("delete tb keep", c.Resources.Delete(ctx, "vm-100-disk-1", tbNode, &lc.ResourceDeleteOpts{KeepTiebreaker: true}))
	if _, err := c.Resources.Get(ctx, "vm-100-disk-1", tbNode); err != nil {
		t.Fatalf("tie-breaker must survive keep_tiebreaker: %v", err)
	}
	if _, err := c.Resources.Get(ctx, "vm-100-disk-1", "nope"); !errors.Is(err, lc.NotFoundError) {
		t.Fatalf("missing resource: %v, want NotFoundError", err)
	}

	// Resize.
	ok("resize", c.ResourceDefinitions.ModifyVolumeDefinition(ctx, "vm-100-disk-1", 0, lc.VolumeDefinitionModify{SizeKib: 2 << 20}))
	vd, err := c.ResourceDefinitions.GetVolumeDefinition(ctx, "vm-100-disk-1", 0)
	ok("get vd", err)
	if vd.SizeKib != 2<<20 || hasFlag(vd.Flags, model.VdFlagResize) {
		t.Fatalf("vd after resize = %+v", vd)
	}
	err = c.ResourceDefinitions.ModifyVolumeDefinition(ctx, "vm-100-disk-1", 0, lc.VolumeDefinitionModify{SizeKib: 1 << 20})
	if !lc.IsApiCallError(err, linstor.FailInvldVlmSize) {
		t.Fatalf("shrink: %v, want FailInvldVlmSize", err)
	}

	// Snapshots: create, list, rollback, restore, delete.
	ok("snapshot", c.Resources.CreateSnapshot(ctx, lc.Snapshot{Name: "snap1", ResourceName: "vm-100-disk-1"}))
	snaps, err := c.Resources.GetSnapshots(ctx, "vm-100-disk-1")
	ok("list snapshots", err)
	if len(snaps) != 1 || !hasFlag(snaps[0].Flags, model.SnapFlagSuccessful) || len(snaps[0].Snapshots) != 2 || len(snaps[0].VolumeDefinitions) != 1 {
		t.Fatalf("snapshots = %+v", snaps)
	}
	sview, err := c.Resources.GetSnapshotView(ctx)
	ok("snapshot view", err)
	if len(sview) != 1 || sview[0].VolumeDefinitions[0].SizeKib != 2<<20 {
		t.Fatalf("snapshot view = %+v", sview)
	}
	ok("rollback", c.Resources.RollbackSnapshot(ctx, "vm-100-disk-1", "snap1"))
	ok("restore target", c.ResourceDefinitions.Create(ctx, lc.ResourceDefinitionCreate{ResourceDefinition: lc.ResourceDefinition{Name: "restored"}}))
	ok("restore vd", c.Resources.RestoreVolumeDefinitionSnapshot(ctx, "vm-100-disk-1", "snap1", lc.SnapshotRestore{ToResource: "restored"}))
	ok("restore rsc", c.Resources.RestoreSnapshot(ctx, "vm-100-disk-1", "snap1", lc.SnapshotRestore{ToResource: "restored"}))
	restored, err := c.Resources.GetAll(ctx, "restored")
	ok("restored resources", err)
	if len(restored) != 3 { // the two snapshot nodes plus a tie-breaker
		t.Fatalf("restored = %+v", restored)
	}
	err = c.ResourceDefinitions.Delete(ctx, "vm-100-disk-1")
	if !lc.IsApiCallError(err, linstor.FailInUse) {
		t.Fatalf("deleting a definition with snapshots: %v, want FailInUse", err)
	}
	ok("delete snapshot", c.Resources.DeleteSnapshot(ctx, "vm-100-disk-1", "snap1"))
	if _, err := c.Resources.GetSnapshot(ctx, "vm-100-disk-1", "snap1"); !errors.Is(err, lc.NotFoundError) {
		t.Fatalf("deleted snapshot: %v, want NotFoundError", err)
	}

	// Toggle-disk through the deprecated paths golinstor uses.
	ok("diskful", c.Resources.Diskful(ctx, "vm-100-disk-1", tbNode, "", nil))
	r3, err = c.Resources.Get(ctx, "vm-100-disk-1", tbNode)
	ok("get after diskful", err)
	if hasFlag(r3.Flags, model.RscFlagDiskless) || r3.Props[model.KeyStorPoolName] != "thin" {
		t.Fatalf("after toggle diskful: %+v", r3)
	}
	ok("diskless", c.Resources.Diskless(ctx, "vm-100-disk-1", tbNode, ""))

	// Controller.
	v, err := c.Controller.GetVersion(ctx)
	ok("version", err)
	if v.RestApiVersion == "" || v.Version == "" {
		t.Fatalf("version = %+v", v)
	}
	ok("set ctrl prop", c.Controller.Modify(ctx, lc.GenericPropsModify{OverrideProps: map[string]string{"Aux/site": "lab"}}))
	props, err := c.Controller.GetProps(ctx)
	ok("ctrl props", err)
	if props["Aux/site"] != "lab" || props[model.KeyAutoAddQuorumTiebreaker] != "True" {
		t.Fatalf("controller props = %v", props)
	}
	ok("delete ctrl prop", c.Controller.DeleteProp(ctx, "Aux/site"))

	// Delete everything.
	ok("delete rd", c.ResourceDefinitions.Delete(ctx, "vm-100-disk-1"))
	ok("delete restored", c.ResourceDefinitions.Delete(ctx, "restored"))
	if _, err := c.ResourceDefinitions.Get(ctx, "vm-100-disk-1"); !errors.Is(err, lc.NotFoundError) {
		t.Fatalf("deleted rd: %v, want NotFoundError", err)
	}
	ok("delete vg", c.ResourceGroups.DeleteVolumeGroup(ctx, "drbdgrp", 0))
	ok("delete rg", c.ResourceGroups.Delete(ctx, "drbdgrp"))
	ok("delete pool", c.Nodes.DeleteStoragePool(ctx, "pve3", "thin"))
	ok("delete netif", c.Nodes.DeleteNetinterface(ctx, "pve1", "storage"))
	ok("delete node", c.Nodes.Delete(ctx, "pve3"))
	if len(e.b.State.Resources("")) != 0 {
		t.Fatalf("resources left: %+v", e.b.State.Resources(""))
	}
}

func hasFlag(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// TestGolinstorErrors checks error mapping through golinstor.
func TestGolinstorErrors(t *testing.T) {
	e := newEnv(t)
	e.cluster("pve1", "pve2")
	c := e.golinstor()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		mask uint64
		nf   bool
	}{
		{"spawn into unknown group", func() error {
			return c.ResourceGroups.Spawn(ctx, "nogroup", lc.ResourceGroupSpawn{ResourceDefinitionName: "vm-1-disk-1", VolumeSizes: []int64{1024}})
		}, 0, true},
		{"invalid rd name", func() error {
			return c.ResourceDefinitions.Create(ctx, lc.ResourceDefinitionCreate{ResourceDefinition: lc.ResourceDefinition{Name: "1bad name"}})
		}, linstor.FailInvldRscName, false},
		{"too many replicas", func() error {
			return c.ResourceGroups.Spawn(ctx, "drbdgrp", lc.ResourceGroupSpawn{ResourceDefinitionName: "vm-1-disk-1", VolumeSizes: []int64{1024},
				SelectFilter: lc.AutoSelectFilter{PlaceCount: 3}})
		}, linstor.FailNotEnoughNodes, false},
		{"unknown resource for make-available", func() error {
			return c.Resources.MakeAvailable(ctx, "nope", "pve1", lc.ResourceMakeAvailable{})
		}, 0, true},
		{"pool of unknown provider", func() error {
			return c.Nodes.CreateStoragePool(ctx, "pve1", lc.StoragePool{StoragePoolName: "files", ProviderKind: lc.FILE})
		}, linstor.FailInvldStorDriver, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.nf {
				if !errors.Is(err, lc.NotFoundError) {
					t.Fatalf("err = %v, want NotFoundError", err)
				}
				return
			}
			if !lc.IsApiCallError(err, tt.mask) {
				t.Fatalf("err = %v, want ApiCallError with %#x", err, tt.mask)
			}
		})
	}
}
