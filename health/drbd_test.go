package health

import (
	"strings"
	"testing"
)

// TestDRBDStates covers the states the node fixtures do not: each row is
// one resource as events2 --now prints it.
func TestDRBDStates(t *testing.T) {
	const res = "exists resource name:r0 role:Secondary suspended:no force-io-failures:no may_promote:no promotion_score:0 write-ordering:flush\n"
	tests := []struct {
		name   string
		events string
		want   Severity
		hintIn string
	}{
		{"outdated disk", res +
			"exists device name:r0 volume:0 minor:1 disk:Outdated client:no open:no quorum:yes\n",
			Warning, "drbdadm connect r0"},
		{"inconsistent while resyncing", res +
			"exists connection name:r0 peer-node-id:1 conn-name:pve2 connection:Connected role:Primary congested:no\n" +
			"exists device name:r0 volume:0 minor:1 disk:Inconsistent client:no open:no quorum:yes\n" +
			"exists peer-device name:r0 peer-node-id:1 conn-name:pve2 volume:0 replication:SyncTarget peer-disk:UpToDate peer-client:no resync-suspended:no done:12.50 out-of-sync:1024\n",
			Warning, "nothing to do but wait"},
		{"inconsistent without resync", res +
			"exists device name:r0 volume:0 minor:1 disk:Inconsistent client:no open:no quorum:no\n",
			Critical, "drbdadm connect r0"},
		{"diskless client is fine", res +
			"exists device name:r0 volume:0 minor:1 disk:Diskless client:yes open:no quorum:yes\n",
			OK, ""},
		{"standalone without split brain", res +
			"exists connection name:r0 peer-node-id:1 conn-name:pve2 connection:StandAlone role:Unknown congested:no\n",
			Warning, "drbdadm connect r0:pve2"},
		{"unrelated data", res +
			"exists connection name:r0 peer-node-id:1 conn-name:pve2 connection:StandAlone role:Unknown sync-state:Unrelated congested:no\n",
			Critical, "create-md"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := ParseEvents2([]byte(tt.events + "exists -\n"))
			if err != nil {
				t.Fatal(err)
			}
			var fs []Finding
			for _, r := range rs {
				fs = append(fs, splitBrain(r)...)
				fs = append(fs, connections(r)...)
				fs = append(fs, disks(r)...)
				fs = append(fs, outOfSync(r)...)
			}
			sev := OK
			for _, f := range fs {
				sev = max(sev, f.Severity)
			}
			if sev != tt.want {
				t.Fatalf("severity %s, want %s: %+v", sev, tt.want, fs)
			}
			if tt.hintIn != "" {
				found := false
				for _, f := range fs {
					found = found || (f.Severity == sev && strings.Contains(f.Hint, tt.hintIn))
				}
				if !found {
					t.Errorf("no hint with %q: %+v", tt.hintIn, fs)
				}
			}
		})
	}
}
