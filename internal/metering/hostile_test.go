package metering

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A quantity a float64 cannot hold, a negative one or one above the bound
// counts as 0 for that resource of that pod, and is reported; everything
// else about the pod counts as usual.
func TestPassBoundsQuantities(t *testing.T) {
	const secs = 60
	for _, tt := range []struct {
		name                           string
		cpuReq, memReq, cpuLim, memLim string
		want                           *Usage
		wantInvalid                    map[InvalidQuantity]int
	}{
		{name: "ordinary quantities count", cpuReq: "500m", memReq: "1Gi", cpuLim: "1", memLim: "2Gi",
			want: usage(secs, 0.5, gi, 1, 2*gi, 1)},
		{name: "a memory limit of 1e400 is +Inf as a float64: memory limit counts 0", cpuReq: "500m", memReq: "1Gi", cpuLim: "1", memLim: "1e400",
			want: usage(secs, 0.5, gi, 1, 0, 1), wantInvalid: map[InvalidQuantity]int{{"ns", "limits.memory"}: 1}},
		{name: "a decimal exponent in the hundreds is finite but above the bound", cpuReq: "1e300", memReq: "123456789e300", cpuLim: "", memLim: "",
			want:        usage(secs, 0, 0, 0, 0, 1),
			wantInvalid: map[InvalidQuantity]int{{"ns", "requests.cpu"}: 1, {"ns", "requests.memory"}: 1}},
		{name: "exactly 2^63 bytes and 2^63 millicores count", cpuReq: "9223372036854775808m", memReq: "8Ei", cpuLim: "", memLim: "",
			want: usage(secs, MaxCores, MaxBytes, 0, 0, 1)},
		// Above 2^63 with a binary suffix, a quantity saturates at 2^63-1
		// when parsed (as in the API server); with a decimal exponent not.
		{name: "1e19 bytes, just above 2^63, does not", cpuReq: "", memReq: "1e19", cpuLim: "", memLim: "",
			want: usage(secs, 0, 0, 0, 0, 1), wantInvalid: map[InvalidQuantity]int{{"ns", "requests.memory"}: 1}},
		{name: "a negative request counts 0", cpuReq: "-1", memReq: "", cpuLim: "", memLim: "",
			want: usage(secs, 0, 0, 0, 0, 1), wantInvalid: map[InvalidQuantity]int{{"ns", "requests.cpu"}: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			agg := NewAggregator(time.Hour, t0)
			p := agg.NewPass(t0.Add(secs * time.Second))
			p.Add(newPod("ns", "pod", startedAt(t0.Add(-time.Hour)), resources(tt.cpuReq, tt.memReq, tt.cpuLim, tt.memLim)))
			agg.Commit(p)
			if diff := cmp.Diff([]Window{window(t0, map[string]*Usage{"ns": tt.want})}, agg.Open()); diff != "" {
				t.Errorf("open windows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantInvalid, p.Invalid, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("invalid quantities (-want +got):\n%s", diff)
			}
			if (p.FirstInvalid != "") != (len(tt.wantInvalid) > 0) || tt.wantInvalid != nil && !strings.HasPrefix(p.FirstInvalid, "Pod ns/pod: ") {
				t.Errorf("FirstInvalid = %q", p.FirstInvalid)
			}
		})
	}
}

func TestPassBoundsClaims(t *testing.T) {
	agg := NewAggregator(time.Hour, t0)
	p := agg.NewPass(t0.Add(time.Minute))
	for _, size := range []string{"1e400", "1Gi"} {
		p.AddClaim(&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "claim-" + size, CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))},
			Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound,
				Capacity: corev1.ResourceList{corev1.ResourceStorage: apiresource.MustParse(size)}},
		})
	}
	agg.Commit(p)
	want := &Usage{StorageByteSeconds: 60 * gi, StorageByteSecondsByClass: map[string]float64{"": 60 * gi}}
	if diff := cmp.Diff([]Window{window(t0, map[string]*Usage{"ns": want})}, agg.Open()); diff != "" {
		t.Errorf("open windows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[InvalidQuantity]int{{"ns", "storage"}: 1}, p.Invalid); diff != "" {
		t.Errorf("invalid quantities (-want +got):\n%s", diff)
	}
}

// One pod with a memory limit of 1e400 used to turn its namespace's sum
// into +Inf, fail every checkpoint save and so stop the delivery of every
// namespace's windows.
func TestMeterHostileQuantityStopsNothing(t *testing.T) {
	end := t0.Add(2*time.Hour + 30*time.Second)
	want := uninterrupted(t, end)

	s := newScenario(t, StdoutOutput)
	honest := s.podsAt
	s.podsAt = func(at time.Time) []*corev1.Pod {
		return append(honest(at), newPod("evil-ns", "bomb", startedAt(t0.Add(-time.Hour)), resources("1", "1Gi", "", "1e400")))
	}
	before := testutil.ToFloat64(invalidQuantities.WithLabelValues("evil-ns", "limits.memory"))
	errorsBefore := testutil.ToFloat64(checkpointErrors)
	r := s.start()
	s.runUntil(r, end)
	s.stop(r)

	var others, evil []Record
	for _, rec := range s.records() {
		if rec.Namespace == "evil-ns" {
			evil = append(evil, rec)
		} else {
			others = append(others, rec)
		}
	}
	// The hostile namespace adds a record to each window.
	if diff := cmp.Diff(want, others, cmpopts.IgnoreFields(Record{}, "WindowRecords")); diff != "" {
		t.Errorf("records of the other namespaces (-without the hostile pod +with it):\n%s", diff)
	}
	wantEvil := []Usage{*usage(3600, 1, gi, 0, 0, 61), *usage(3600, 1, gi, 0, 0, 61)}
	var gotEvil []Usage
	for _, rec := range evil {
		gotEvil = append(gotEvil, rec.Usage)
	}
	if diff := cmp.Diff(wantEvil, gotEvil); diff != "" {
		t.Errorf("records of the hostile pod's namespace (-want +got):\n%s", diff)
	}
	passes := 121
	if got := testutil.ToFloat64(invalidQuantities.WithLabelValues("evil-ns", "limits.memory")) - before; got != float64(passes) {
		t.Errorf("invalid quantities went up by %v, want one per pass (%d)", got, passes)
	}
	if got := testutil.ToFloat64(checkpointErrors) - errorsBefore; got != 0 {
		t.Errorf("%v checkpoint saves failed", got)
	}
	if n := s.logs.count("count as 0"); n != passes {
		t.Errorf("logged %d lines about invalid quantities in %d passes, want one per pass", n, passes)
	}
	if !s.logs.contains(`"first"="Pod evil-ns/bomb: limits.memory 10e399"`) {
		t.Errorf("the log does not name the pod and quantity: %v", s.logs.lines[len(s.logs.lines)-1])
	}
}

func TestUsageSanitize(t *testing.T) {
	u := &Usage{PodSeconds: 1, CPURequestCoreSeconds: math.Inf(1), MemoryLimitByteSeconds: math.NaN(), StorageByteSeconds: -1,
		StorageByteSecondsByClass: map[string]float64{"fast": math.Inf(-1), "slow": 2}, Samples: 3}
	fields := u.sanitize()
	want := &Usage{PodSeconds: 1, StorageByteSecondsByClass: map[string]float64{"fast": 0, "slow": 2}, Samples: 3}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("sanitized (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"cpuRequestCoreSeconds", "memoryLimitByteSeconds", "storageByteSeconds", "storageByteSecondsByClass.fast"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

// Defence in depth: a sum that is not finite never reaches the encoder,
// and the encoder refuses one with a message that names the namespace.
func TestCheckpointNeverHoldsNonFiniteSums(t *testing.T) {
	cp := checkpointWith(3)
	cp.Open[0].Usage["customer0-project1"].MemoryLimitByteSeconds = math.Inf(1)
	_, err := encodeCheckpoint(cp)
	if err == nil || !strings.Contains(err.Error(), `namespace "customer0-project1"`) || strings.Contains(err.Error(), "json") {
		t.Errorf("encoding a checkpoint with +Inf: %v, want a refusal that names the namespace", err)
	}

	s := newScenario(t, StdoutOutput)
	r := s.start()
	s.passOnce(r)
	r.agg.open[t0.UnixNano()]["acme-shop"].CPULimitCoreSeconds = math.Inf(1)
	s.clock.Step(testInterval)
	s.passOnce(r)
	if got := testutil.ToFloat64(checkpointSaveFailing); got != 0 {
		t.Errorf("the save failed: meshstack_metering_checkpoint_save_failing = %v", got)
	}
	saved, err := s.checkpoint.handle().Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := saved.Open[0].Usage["acme-shop"]; got.CPULimitCoreSeconds != 0 || got.PodSeconds == 0 {
		t.Errorf("saved usage %+v, want the +Inf figure as 0 and the others kept", got)
	}
	if !s.logs.contains("A usage sum is negative or not finite") {
		t.Errorf("not logged: %v", s.logs.lines)
	}
}
