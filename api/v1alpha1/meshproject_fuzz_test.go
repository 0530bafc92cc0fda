package v1alpha1

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// schemaAccepts is the CRD's rule for the identifiers, written out: each
// 1 to 62 lowercase letters and digits, together under 63 characters.
func schemaAccepts(customer, project string) bool {
	lowerAlnum := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
				return false
			}
		}
		return s != "" && len(s) <= 62
	}
	return lowerAlnum(customer) && lowerAlnum(project) && len(customer)+len(project) < 63
}

// FuzzNamespaceName checks that every pair of identifiers the schema
// accepts gives a namespace name the API server accepts, with label values
// that are valid too, and that the name tells the identifiers apart: it
// splits at its one dash into exactly them, so two projects get the same
// namespace only if they have the same identifiers.
func FuzzNamespaceName(f *testing.F) {
	for _, seed := range [][2]string{
		{"acme", "shop"}, {"a", "b"}, {"0", "9"}, {"kube", "system"},
		{strings.Repeat("c", 31), strings.Repeat("p", 31)},
		{strings.Repeat("c", 62), "p"},
		{"acme-x", "shop"}, {"Acme", "shop"}, {"", "shop"}, {"acme", "shop."},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, customer, project string) {
		p := &MeshProject{Spec: MeshProjectSpec{CustomerIdentifier: Identifier(customer), ProjectIdentifier: Identifier(project)}}
		name := p.NamespaceName()
		if !schemaAccepts(customer, project) {
			return
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Fatalf("identifiers %q, %q give namespace %q: %v", customer, project, name, errs)
		}
		for _, v := range []string{customer, project} {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Fatalf("identifier %q is no label value: %v", v, errs)
			}
		}
		if c, pr, _ := strings.Cut(name, "-"); c != customer || pr != project || strings.Count(name, "-") != 1 {
			t.Fatalf("namespace %q does not split into %q and %q", name, customer, project)
		}
	})
}
