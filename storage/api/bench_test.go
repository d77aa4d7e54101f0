package api_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/pvehci/pvehci/ha/state"
	"github.com/pvehci/pvehci/internal/clock"
	"github.com/pvehci/pvehci/storage/api"
	"github.com/pvehci/pvehci/storage/api/apitest"
	"github.com/pvehci/pvehci/storage/model"
)

// benchBackend builds a cluster of 10 nodes holding n resources: n/2
// definitions with two diskful replicas each, as a busy PVE cluster has.
func benchBackend(b *testing.B, n int) *apitest.Backend {
	b.Helper()
	be := apitest.New()
	apply := func(c state.Command) {
		if r := be.State.Apply(c); r.Err != nil {
			b.Fatalf("%s: %v", c.Type(), r.Err)
		}
	}
	apply(&state.SetProps{Target: state.Target{Kind: model.ObjController},
		Change: model.PropsChange{Set: model.Props{model.KeyTcpPortAutoRange: "7000-30000"}}})
	const nodes = 10
	for i := range nodes {
		name := fmt.Sprintf("pve%02d", i)
		apply(&state.CreateNode{Name: name, NodeType: model.NodeTypeSatellite,
			NetInterfaces: []model.NetInterface{{Name: "default", Address: "10.0.0." + strconv.Itoa(i+1)}}})
		apply(&state.CreateStoragePool{Node: name, Name: "thin", ProviderKind: model.ProviderLVMThin,
			Props: model.Props{model.KeyStorDriverLvmVg: "pve", model.KeyStorDriverThinPool: "data"}})
	}
	for i := range n / 2 {
		rd := fmt.Sprintf("vm-%d-disk-0", 100+i)
		apply(&state.CreateResourceDefinition{Name: rd, DrbdSecret: "secret", Props: model.Props{model.KeyAuxVMID: strconv.Itoa(100 + i)},
			VolumeDefinitions: []state.NewVolumeDefinition{{SizeKiB: 32 << 20}}})
		for j := range 2 {
			apply(&state.CreateResource{ResourceDefinition: rd, Node: fmt.Sprintf("pve%02d", (i+j)%nodes), Kind: state.Diskful,
				StoragePool: "thin", CreateTimestamp: 1_800_000_000_000})
		}
	}
	return be
}

// BenchmarkViewResources is the plugin's most frequent call: every PVE
// storage operation lists all resources at least once.
func BenchmarkViewResources(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			be := cachedObserver{Backend: benchBackend(b, n), obs: map[string]api.ObservedResource{}}
			for _, r := range be.State.Resources("") {
				o, _ := be.Backend.Observed(r.Name, r.Node)
				be.obs[r.Name+"/"+r.Node] = o
			}
			h := api.New(be, api.Options{Clock: clock.NewFake(time.Unix(1_800_000_000, 0)), Rand: rand.NewChaCha8([32]byte{})})
			req := httptest.NewRequest(http.MethodGet, "/v1/view/resources", nil)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.code != http.StatusOK || w.n < int64(n)*500 {
				b.Fatalf("status %d, %d bytes", w.code, w.n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.n = 0
				h.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(w.n)/float64(n), "bytes/resource")
		})
	}
}

// cachedObserver answers Observed from a map, as the daemon's cache of
// satellite reports does; apitest's synthesised reports would dominate
// the measurement otherwise.
type cachedObserver struct {
	*apitest.Backend
	obs map[string]api.ObservedResource
}

func (c cachedObserver) Observed(rd, node string) (api.ObservedResource, bool) {
	o, ok := c.obs[rd+"/"+node]
	return o, ok
}

// discardWriter is a ResponseWriter that counts and drops the body.
type discardWriter struct {
	h    http.Header
	code int
	n    int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(c int)   { w.code = c }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := io.Discard.Write(p)
	w.n += int64(n)
	return n, err
}
