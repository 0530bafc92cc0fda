package v1alpha1_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// decodeList decodes a list as the informers do, through the scheme's
// universal deserializer.
func decodeList(t *testing.T, body string) runtime.Object {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := meshv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	obj, _, err := serializer.NewCodecFactory(scheme).UniversalDeserializer().Decode([]byte(body), nil, nil)
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	return obj
}

func TestProjectListWithAQuantityThatDoesNotParseDecodes(t *testing.T) {
	list := decodeList(t, `{"apiVersion":"meshcloud.io/v1alpha1","kind":"MeshProjectList","items":[
	 {"metadata":{"name":"bad"},"spec":{"customerIdentifier":"a","projectIdentifier":"b","quota":{"requests.cpu":"1e1.5","pods":"10"}}},
	 {"metadata":{"name":"good"},"spec":{"customerIdentifier":"c","projectIdentifier":"d","quota":{"pods":5}}}]}`).(*meshv1.MeshProjectList)

	got := map[string]meshv1.MeshProjectSpec{}
	for _, p := range list.Items {
		got[p.Name] = p.Spec
	}
	want := map[string]meshv1.MeshProjectSpec{
		"bad": {CustomerIdentifier: "a", ProjectIdentifier: "b",
			Quota:             corev1.ResourceList{"pods": resource.MustParse("10")},
			InvalidQuantities: []string{`spec.quota[requests.cpu]: "1e1.5"`}},
		"good": {CustomerIdentifier: "c", ProjectIdentifier: "d", Quota: corev1.ResourceList{"pods": resource.MustParse("5")}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded specs (-want +got):\n%s", diff)
	}
}

func TestZoneQuantitiesThatDoNotParseAreLeftOut(t *testing.T) {
	var spec meshv1.MeshLandingZoneSpec
	err := json.Unmarshal([]byte(`{"resourceQuota":{"hard":{"pods":"1e1.5","limits.cpu":"4"}},"maxQuota":{"requests.memory":"x"},
	  "limitRange":{"limits":[{"type":"Container","max":{"cpu":"2"}},{"type":"Pod","min":{"memory":"1..2"}}]}}`), &spec)
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid := []string{`spec.limitRange.limits[1].min[memory]: "1..2"`, `spec.maxQuota[requests.memory]: "x"`, `spec.resourceQuota.hard[pods]: "1e1.5"`}
	if diff := cmp.Diff(wantInvalid, spec.InvalidQuantities); diff != "" {
		t.Errorf("invalid quantities (-want +got):\n%s", diff)
	}
	if got := spec.ResourceQuota.Hard; len(got) != 1 || got.Cpu().IsZero() && got.Name("limits.cpu", resource.DecimalSI).String() != "4" {
		t.Errorf("resourceQuota.hard = %v, want only limits.cpu: 4", got)
	}
	if len(spec.LimitRange.Limits) != 2 || spec.LimitRange.Limits[0].Max.Cpu().String() != "2" || len(spec.LimitRange.Limits[1].Min) != 0 {
		t.Errorf("limitRange = %+v, want the valid entries kept and the invalid one dropped", spec.LimitRange)
	}
}

// resource.ParseQuantity does not return for exponents beyond int32: a
// stored spec with one must still decode, at once.
func TestExponentsParseQuantityNeverReturnsFromAreLeftOut(t *testing.T) {
	done := make(chan meshv1.MeshProjectSpec, 1)
	go func() {
		var spec meshv1.MeshProjectSpec
		if err := json.Unmarshal([]byte(`{"customerIdentifier":"a","projectIdentifier":"b",
		  "quota":{"pods":"1e2147483648","limits.memory":"1e-9999999999","requests.cpu":"2","count/x":"1e5"}}`), &spec); err != nil {
			t.Error(err)
		}
		done <- spec
	}()
	select {
	case spec := <-done:
		want := []string{`spec.quota[limits.memory]: "1e-9999999999"`, `spec.quota[pods]: "1e2147483648"`}
		if diff := cmp.Diff(want, spec.InvalidQuantities); diff != "" {
			t.Errorf("invalid quantities (-want +got):\n%s", diff)
		}
		if len(spec.Quota) != 2 {
			t.Errorf("quota %v, want requests.cpu and count/x kept", spec.Quota)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("decoding did not return")
	}
}

// Names that look like long exponents take the careful path and decode the same.
func TestLongExponentLookalikesDecode(t *testing.T) {
	var spec meshv1.MeshProjectSpec
	err := json.Unmarshal([]byte(`{"customerIdentifier":"joe2024","projectIdentifier":"b","roleBindings":[{"role":"admin","users":["mike2025"]}],"quota":{"pods":"10"}}`), &spec)
	if err != nil || spec.CustomerIdentifier != "joe2024" || spec.RoleBindings[0].Users[0] != "mike2025" || spec.Quota.Pods().String() != "10" || spec.InvalidQuantities != nil {
		t.Errorf("spec %+v, error %v", spec, err)
	}
}

func TestOtherDecodeErrorsStillFail(t *testing.T) {
	var spec meshv1.MeshProjectSpec
	if err := json.Unmarshal([]byte(`{"customerIdentifier":5}`), &spec); err == nil {
		t.Error("a wrong type decoded without an error")
	}
}
