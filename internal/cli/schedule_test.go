package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/localapi"
	"github.com/pvehci/pvehci/storage/model"
)

// fakeDaemon serves /v1/state and /v1/apply on a socket from a real state,
// as the daemon's local API does.
func fakeDaemon(t *testing.T) (string, *state.State) {
	t.Helper()
	st := state.New()
	if res := st.Apply(&state.CreateResourceGroup{Name: "drbdgrp"}); res.Err != nil {
		t.Fatal(res.Err)
	}
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		data, err := st.Snapshot()
		if err != nil {
			localapi.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		w.Write(data)
	})
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		entry, _ := io.ReadAll(r.Body)
		cmd, err := state.Decode(entry)
		if err != nil {
			localapi.WriteError(w, http.StatusBadRequest, err)
			return
		}
		if res := st.Apply(cmd); res.Err != nil {
			localapi.WriteError(w, http.StatusConflict, res.Err)
			return
		}
		localapi.WriteJSON(w, http.StatusOK, nil)
	})
	return serveLocalAPI(t, mux), st
}

// serveLocalAPI serves mux on a fresh local API socket until the test ends
// and returns the socket's path.
func serveLocalAPI(t *testing.T, mux *http.ServeMux) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pvehci-api") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestScheduleCommands(t *testing.T) {
	t.Parallel()
	sock, st := fakeDaemon(t)
	code, out, errOut := runCLI(t, "schedule", "add", "nightly", "--cron", "0 2 * * *", "--kind", "snapshot",
		"--target", "resource-group:drbdgrp", "--option", "keep-daily=7", "--option", "keep-last=2", "--socket", sock)
	if code != ExitOK {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	js, ok := st.JobSchedule("nightly")
	if !ok || js.Kind != model.JobSnapshot || js.Target != (model.JobTarget{Kind: model.TargetResourceGroup, Name: "drbdgrp"}) ||
		js.Options["keep-daily"] != "7" || js.Options["keep-last"] != "2" || js.Cron != "0 2 * * *" {
		t.Fatalf("schedule in the state: %+v", js)
	}
	if code, _, _ := runCLI(t, "schedule", "add", "weekly-verify", "--cron", "42 0 * * 0", "--kind", "verify", "--socket", sock); code != ExitOK {
		t.Fatal("add verify failed")
	}

	code, out, _ = runCLI(t, "schedule", "list", "--socket", sock)
	if code != ExitOK || !strings.Contains(out, "nightly") || !strings.Contains(out, "resource-group drbdgrp") || !strings.Contains(out, "weekly-verify") {
		t.Fatalf("list: %d\n%s", code, out)
	}

	if code, out, errOut := runCLI(t, "schedule", "pause", "nightly", "--socket", sock); code != ExitOK {
		t.Fatalf("pause: %s %s", out, errOut)
	}
	if js, _ := st.JobSchedule("nightly"); !js.Paused {
		t.Fatal("not paused")
	}
	code, out, _ = runCLI(t, "schedule", "list", "-o", "json", "--socket", sock)
	var rows []scheduleRow
	if code != ExitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 || !rows[0].Paused || rows[0].NextRun != nil {
		t.Fatalf("list json: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "schedule", "resume", "nightly", "--socket", sock); code != ExitOK {
		t.Fatal("resume failed")
	}
	if js, _ := st.JobSchedule("nightly"); js.Paused {
		t.Fatal("still paused")
	}

	start := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	if res := st.Apply(&state.RecordJobRun{Run: model.JobRun{ID: "20260301T020000-nightly", Schedule: "nightly", Kind: model.JobSnapshot,
		Target: js.Target, State: model.RunFailed, StartedAt: start.UnixMilli(), FinishedAt: start.Add(3 * time.Second).UnixMilli(),
		Message: "snapshot nightly-20260301T020000Z of vm-100-disk-0 failed"}}); res.Err != nil {
		t.Fatal(res.Err)
	}
	code, out, _ = runCLI(t, "schedule", "history", "nightly", "--socket", sock)
	if code != ExitOK || !strings.Contains(out, "20260301T020000-nightly") || !strings.Contains(out, "failed") || !strings.Contains(out, "3s") {
		t.Fatalf("history: %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "schedule", "history", "nope", "--socket", sock); code != ExitError || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("history of a missing schedule: %d %s", code, errOut)
	}

	// edit, show, run-now.
	if code, out, errOut := runCLI(t, "schedule", "edit", "nightly", "--cron", "30 1 * * *", "--option", "keep-weekly=4", "--delete-option", "keep-last", "--socket", sock); code != ExitOK {
		t.Fatalf("edit: %s %s", out, errOut)
	}
	if js, _ := st.JobSchedule("nightly"); js.Cron != "30 1 * * *" || js.Options["keep-weekly"] != "4" || js.Options["keep-last"] != "" || js.Options["keep-daily"] != "7" {
		t.Fatalf("after edit: %+v", js)
	}
	if code, _, errOut := runCLI(t, "schedule", "edit", "nightly", "--socket", sock); code != ExitUsage || !strings.Contains(errOut, "changes nothing") {
		t.Fatalf("edit without changes: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "schedule", "edit", "nightly", "--cron", "61 * * * *", "--socket", sock); code != ExitUsage || !strings.Contains(errOut, "--cron") {
		t.Fatalf("edit with a bad cron: %d %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, "schedule", "run-now", "nightly", "--socket", sock); code != ExitOK || !strings.Contains(out, "run requested") {
		t.Fatalf("run-now: %d %s %s", code, out, errOut)
	}
	if js, _ := st.JobSchedule("nightly"); js.RunRequestedAt == 0 {
		t.Fatal("run-now recorded no request")
	}
	code, out, _ = runCLI(t, "schedule", "show", "nightly", "--socket", sock)
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"cron: 30 1 * * *", "option: keep-daily=7", "option: keep-weekly=4", "run requested:", "last runs:", "failed"} {
		if code != ExitOK || !strings.Contains(flat, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := runCLI(t, "schedule", "show", "nope", "--socket", sock); code != ExitError || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("show of a missing schedule: %d %s", code, errOut)
	}

	// remove asks for confirmation; without a terminal it refuses.
	if code, _, _ := runCLI(t, "schedule", "remove", "nightly", "--socket", sock); code == ExitOK {
		t.Fatal("remove without --yes and without a terminal succeeded")
	}
	if _, ok := st.JobSchedule("nightly"); !ok {
		t.Fatal("removed without confirmation")
	}
	if code, out, errOut := runCLI(t, "schedule", "remove", "nightly", "--yes", "--socket", sock); code != ExitOK {
		t.Fatalf("remove --yes: %s %s", out, errOut)
	}
	if _, ok := st.JobSchedule("nightly"); ok {
		t.Fatal("not removed")
	}
}

func TestScheduleAddRefusesBadInput(t *testing.T) {
	t.Parallel()
	sock, st := fakeDaemon(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--cron", "61 * * * *", "--kind", "snapshot"}, ExitUsage, "--cron"},
		{[]string{"--cron", "TZ=UTC", "--kind", "snapshot"}, ExitUsage, "--cron"},
		{[]string{"--cron", "@daily", "--kind", "snapshot", "--target", "pool:x"}, ExitUsage, "--target"},
		{[]string{"--cron", "@daily", "--kind", "snapshot", "--option", "keep-daily"}, ExitUsage, "KEY=VALUE"},
		{[]string{"--cron", "@daily", "--kind", "backup"}, ExitError, "backup"},
		{[]string{"--cron", "@daily", "--kind", "snapshot", "--option", "keep-last=-1"}, ExitUsage, "keep-last"},
		{[]string{"--cron", "@daily", "--kind", "snapshot", "--target", "resource-group:missing"}, ExitError, "missing"},
		{[]string{"--cron", "@daily", "--kind", "verify", "--option", "resync=always"}, ExitUsage, "give off or from-primary"},
		{[]string{"--cron", "@daily", "--kind", "verify", "--option", "max-rate=fast"}, ExitUsage, "max-rate"},
		{[]string{"--cron", "@daily", "--kind", "verify", "--option", "window=13h"}, ExitUsage, "not shorter than the run's timeout"},
	} {
		args := append([]string{"schedule", "add", "bad", "--socket", sock}, tc.args...)
		code, _, errOut := runCLI(t, args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, want %d; stderr %q lacks %q", tc.args, code, tc.code, errOut, tc.msg)
		}
	}
	if len(st.JobSchedules()) != 0 {
		t.Fatalf("a bad schedule was stored: %+v", st.JobSchedules())
	}
}

// TestScheduleAck: ack records the newest verify run that found data out of
// sync on the definition, and refuses when there is nothing to acknowledge.
func TestScheduleAck(t *testing.T) {
	t.Parallel()
	sock, st := fakeDaemon(t)
	for _, cmd := range []state.Command{
		&state.CreateResourceDefinition{Name: "pm-1", DrbdSecret: "c2VjcmV0", ResourceGroup: "drbdgrp"},
		&state.CreateResourceDefinition{Name: "pm-2", DrbdSecret: "c2VjcmV0", ResourceGroup: "drbdgrp"},
		&state.RecordJobRun{Run: model.JobRun{ID: "run-1", Kind: model.JobVerify, Target: model.JobTarget{Kind: model.TargetAll},
			State: model.RunSucceeded, StartedAt: 1000, FinishedAt: 2000, Details: map[string]string{"oos-kib.pm-1": "4", "oos-kib.pm-2": "0"}}},
	} {
		if res := st.Apply(cmd); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	code, out, errOut := runCLI(t, "schedule", "ack", "pm-1", "--socket", sock)
	if code != ExitOK || !strings.Contains(out, "4 KiB out of sync in pm-1") {
		t.Fatalf("ack pm-1: %d %s%s", code, out, errOut)
	}
	if d, _ := st.ResourceDefinition("pm-1"); d.Props[model.PropVerifyAck] != "run-1" {
		t.Errorf("props %v", d.Props)
	}
	if code, out, _ := runCLI(t, "schedule", "ack", "pm-1", "--socket", sock); code != ExitOK || !strings.Contains(out, "already acknowledged") {
		t.Errorf("second ack: %d %s", code, out)
	}
	if code, _, errOut := runCLI(t, "schedule", "ack", "pm-2", "--socket", sock); code == ExitOK || !strings.Contains(errOut, "found nothing out of sync") {
		t.Errorf("ack of a clean verify: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "schedule", "ack", "pm-9", "--socket", sock); code == ExitOK || !strings.Contains(errOut, "does not exist") {
		t.Errorf("ack of an unknown definition: %d %s", code, errOut)
	}
}
