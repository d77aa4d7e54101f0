package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/internal/hostfs"
)

func testHost(t *testing.T) (*Host, string) {
	t.Helper()
	root := t.TempDir()
	return &Host{FS: hostfs.Root(root), Clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}, root
}

func put(t *testing.T, root, name, data string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(root, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
}

// failingStep writes files through the host, then fails.
type failingStep struct {
	FilesStep
	failApply bool
}

func (s *failingStep) Apply(ctx context.Context, h *Host) error {
	if err := s.FilesStep.Apply(ctx, h); err != nil {
		return err
	}
	if _, err := h.FS.Remove("/etc/doomed"); err != nil {
		return err
	}
	if s.failApply {
		return errors.New("ifreload -a: exit code 1: bond0: cannot enslave eno1")
	}
	return nil
}

func TestFailedStepRestoresItsFilesByteForByte(t *testing.T) {
	for _, where := range []string{"apply", "verify"} {
		t.Run(where, func(t *testing.T) {
			h, root := testHost(t)
			put(t, root, "etc/network/interfaces", "auto lo\niface lo inet loopback\n", 0o644)
			put(t, root, "etc/doomed", "keep me\n", 0o600)
			put(t, root, "etc/other", "mode only\n", 0o600)
			before := snapshotTree(t, root)

			step := &failingStep{FilesStep: FilesStep{StepName: "network", Files: []File{
				{Path: "/etc/network/interfaces", Data: []byte("auto bond0\n"), Mode: 0o644},
				{Path: "/etc/network/interfaces.d/pvehci", Data: []byte("auto ib0\n"), Mode: 0o644},
				{Path: "/etc/other", Data: []byte("mode only\n"), Mode: 0o644},
			}}, failApply: where == "apply"}
			if where == "verify" {
				step.Check = func(context.Context, *Host) error { return errors.New("bond0 has no active slave") }
			}
			later := &FilesStep{StepName: "corosync", Files: []File{{Path: "/etc/pve/corosync.conf", Data: []byte("x"), Mode: 0o640}}}
			e := &Engine{Host: h, Steps: []Step{step, later}}
			plan, err := e.Plan(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var events []string
			rec, err := e.Apply(context.Background(), plan, func(ev Event) { events = append(events, ev.Step+"="+string(ev.Result)) })
			var se *StepError
			if !errors.As(err, &se) || se.Step != "network" {
				t.Fatalf("Apply error = %v, want a StepError for network", err)
			}
			for _, want := range []string{"step network failed", "restored"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			after := snapshotTree(t, root)
			delete(after, "var/lib/pvehci/bootstrap.json")
			if diff := compareTrees(before, after); diff != "" {
				t.Errorf("files differ after the restore:\n%s", diff)
			}
			if rec.Steps[0].Result != Restored || rec.Steps[1].Result != Skipped {
				t.Errorf("record = %+v", rec.Steps)
			}
			if strings.Join(events, ",") != "network=restored" {
				t.Errorf("progress events = %v", events)
			}
		})
	}
}

func TestConvergedNodePlansNothingAndChangesNothing(t *testing.T) {
	h, root := testHost(t)
	step := &FilesStep{StepName: "service", Files: []File{{Path: "/etc/systemd/system/pvehci.service", Data: []byte("[Unit]\n"), Mode: 0o644}}}
	e := &Engine{Host: h, Steps: []Step{step}}
	plan, _ := e.Plan(context.Background())
	if plan.Empty() || !strings.Contains(plan.String(), "create") || !strings.Contains(plan.String(), "+ [Unit]") {
		t.Fatalf("fresh plan:\n%s", plan)
	}
	if _, err := e.Apply(context.Background(), plan, nil); err != nil {
		t.Fatal(err)
	}
	before := snapshotTree(t, root)
	plan, _ = e.Plan(context.Background())
	if !plan.Empty() || plan.String() != "nothing to do: this node is converged\n" {
		t.Fatalf("converged plan:\n%s", plan)
	}
	rec, err := e.Apply(context.Background(), plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := snapshotTree(t, root)
	delete(before, "var/lib/pvehci/bootstrap.json")
	delete(after, "var/lib/pvehci/bootstrap.json")
	if diff := compareTrees(before, after); diff != "" {
		t.Errorf("a converged run changed files:\n%s", diff)
	}
	if rec.Steps[0].Result != Unchanged || len(rec.Steps[0].FilesTouched) != 0 {
		t.Errorf("converged record = %+v", rec.Steps[0])
	}
	data, err := os.ReadFile(filepath.Join(root, "var/lib/pvehci/bootstrap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := json.Unmarshal(data, &got); err != nil || got.Version != 1 || len(got.Steps) != 1 {
		t.Errorf("record file = %s (%v)", data, err)
	}
}

// snapshotTree maps every regular file under root to its mode and bytes.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[rel] = info.Mode().Perm().String() + " " + string(data)
		return nil
	})
	return out
}

func compareTrees(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, k+": "+v+" -> "+b[k])
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+": (new) "+v)
		}
	}
	return strings.Join(out, "\n")
}
