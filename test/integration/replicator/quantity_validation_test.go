package replicator_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// Quantities as a client other than the operator's typed one may send them:
// raw JSON values, which resource.Quantity could not even marshal. The
// CRD's old pattern admitted every string below; resource.ParseQuantity
// refuses 1e3.5, does not return for 1e2147483648 and 1e-9999999999, and
// reads 1e9999999999 as 10e1410065406, which it cannot compare. The
// operator decodes every MeshProject and MeshLandingZone with it.
var badQuantities = []any{
	"1e3.5", "-1", int64(-1), "-500m", "1e2147483648", "1e-9999999999", "1e9999999999", "1e100",
	strings.Repeat("9", 65), "1.5Ki5", "", "one",
}

var goodQuantities = []any{"500m", "2Gi", "10", int64(10), "0", "1e99", "1.5", "+1", strings.Repeat("9", 64), "100n"}

const quantityMessage = "must be a quantity such as 500m, 2Gi or 10, not negative"

// rawCreate creates obj, as a dry run (validation included), with the value at path replaced by value.
func rawCreate(obj runtime.Object, value any, path ...string) error {
	GinkgoHelper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	Expect(err).NotTo(HaveOccurred())
	Expect(unstructured.SetNestedField(u, value, path...)).To(Succeed())
	return fw.Client.Create(ctx, &unstructured.Unstructured{Object: u}, client.DryRunAll)
}

var _ = Describe("Admission of quantities", func() {
	zone := func() *meshv1.MeshLandingZone {
		z := aZone().hard("pods", "5").maxQuota("pods", "5").containerDefaults("1", "1Gi", "100m", "128Mi").build()
		z.Spec.LimitRange.Limits[0].Max = resources("cpu", "2")
		z.Spec.LimitRange.Limits[0].Min = resources("cpu", "10m")
		z.Spec.LimitRange.Limits[0].MaxLimitRequestRatio = resources("cpu", "10")
		z.APIVersion, z.Kind = meshv1.GroupVersion.String(), "MeshLandingZone"
		return z
	}
	project := func() *meshv1.MeshProject {
		p := aProject().users("admin", "alice").build()
		p.APIVersion, p.Kind = meshv1.GroupVersion.String(), "MeshProject"
		return p
	}
	type place struct {
		obj  func() runtime.Object
		path []string
	}
	inProject := func(path ...string) place { return place{func() runtime.Object { return project() }, path} }
	inZone := func(path ...string) place { return place{func() runtime.Object { return zone() }, path} }
	limit := func(field string) place { return inZone("spec", "limitRange", "limits", "0", field, "cpu") }
	places := map[string]place{
		"MeshProject spec.quota":                   inProject("spec", "quota", "requests.cpu"),
		"zone resourceQuota.hard":                  inZone("spec", "resourceQuota", "hard", "pods"),
		"zone maxQuota":                            inZone("spec", "maxQuota", "pods"),
		"zone limitRange.limits[].max":             limit("max"),
		"zone limitRange.limits[].min":             limit("min"),
		"zone limitRange.limits[].default":         limit("default"),
		"zone limitRange.limits[].defaultRequest":  limit("defaultRequest"),
		"zone limitRange.limits[].maxLimitRequest": limit("maxLimitRequestRatio"),
	}
	for name, pl := range places {
		It("refuses quantities that are no quantities, or negative, in "+name, func() {
			for _, v := range badQuantities {
				obj := pl.obj()
				// SetNestedField cannot index lists: set the item's map directly.
				err := setAndCreate(obj, v, pl.path)
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%q: want Invalid, got %v", v, err)
				Expect(err.Error()).To(Or(ContainSubstring(quantityMessage), ContainSubstring("should be at most 64 chars long"),
					ContainSubstring("spec."+pl.path[1])), "%q", v)
				if s, ok := v.(string); ok && s != "" && s != "one" && len(s) <= 64 {
					Expect(err.Error()).To(ContainSubstring(quantityMessage), "%q: the CEL rule names the problem", v)
				}
			}
		})
		It("accepts quantities in "+name, func() {
			for _, v := range goodQuantities {
				Expect(setAndCreate(pl.obj(), v, pl.path)).To(Succeed(), "%q refused", v)
			}
		})
	}
})

// setAndCreate sets value at path (a list index as a number string) and
// creates obj as a dry run.
func setAndCreate(obj runtime.Object, value any, path []string) error {
	GinkgoHelper()
	for i, p := range path {
		if p != "0" {
			continue
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		Expect(err).NotTo(HaveOccurred())
		list, _, err := unstructured.NestedSlice(u, path[:i]...)
		Expect(err).NotTo(HaveOccurred())
		item := list[0].(map[string]any)
		Expect(unstructured.SetNestedField(item, value, path[i+1:]...)).To(Succeed())
		Expect(unstructured.SetNestedSlice(u, list, path[:i]...)).To(Succeed())
		return fw.Client.Create(ctx, &unstructured.Unstructured{Object: u}, client.DryRunAll)
	}
	return rawCreate(obj, value, path...)
}
