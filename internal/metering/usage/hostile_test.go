package usage

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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

func TestUsageSanitize(t *testing.T) {
	u := &Usage{PodSeconds: 1, CPURequestCoreSeconds: math.Inf(1), MemoryLimitByteSeconds: math.NaN(), StorageByteSeconds: -1,
		StorageByteSecondsByClass: map[string]float64{"fast": math.Inf(-1), "slow": 2}, Samples: 3}
	fields := u.Sanitize()
	want := &Usage{PodSeconds: 1, StorageByteSecondsByClass: map[string]float64{"fast": 0, "slow": 2}, Samples: 3}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("sanitized (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"cpuRequestCoreSeconds", "memoryLimitByteSeconds", "storageByteSeconds", "storageByteSecondsByClass.fast"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}
