package attribution

import (
	"strings"
	"testing"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

// identifier is the schema's rule for customer and project identifiers,
// written out byte by byte rather than as the regular expression under test.
func identifier(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// FuzzSplitIdentifiers checks that a namespace splits into identifiers
// exactly when it is two identifiers joined by one dash, into those two;
// and that the namespace of any MeshProject (api/v1alpha1's NamespaceName)
// splits back into its identifiers exactly when they are valid ones, so
// that a record never names a customer or project other than the one whose
// namespace it is.
func FuzzSplitIdentifiers(f *testing.F) {
	for _, seed := range [][3]string{
		{"acme-shop", "acme", "shop"},
		{"acme-shop-dev", "acme-shop", "dev"},
		{"kube-system", "kube", "system"},
		{"-shop", "", "shop"},
		{"acme-", "acme", ""},
		{"Acme-shop", "Acme", "shop"},
		{"a\u0131-b", "a\u0131", "b"},
		{"acme-shop\n", "acme", "shop\n"},
		{"", "", ""},
		{strings.Repeat("c", 31) + "-" + strings.Repeat("p", 31), strings.Repeat("c", 62), "p"},
		{"acme--shop", "acme-", "shop"},
		{"\xff-\x00", "\xff", "\x00"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, namespace, customer, project string) {
		c, p, ok := SplitIdentifiers(namespace)
		wantC, wantP, found := strings.Cut(namespace, "-")
		wantOK := found && identifier(wantC) && identifier(wantP)
		if !wantOK {
			wantC, wantP = "", ""
		}
		if c != wantC || p != wantP || ok != wantOK {
			t.Fatalf("SplitIdentifiers(%q) = %q, %q, %v; want %q, %q, %v", namespace, c, p, ok, wantC, wantP, wantOK)
		}

		mp := &meshv1.MeshProject{Spec: meshv1.MeshProjectSpec{
			CustomerIdentifier: meshv1.Identifier(customer), ProjectIdentifier: meshv1.Identifier(project),
		}}
		c, p, ok = SplitIdentifiers(mp.NamespaceName())
		if valid := identifier(customer) && identifier(project); ok != valid || (ok && (c != customer || p != project)) {
			t.Fatalf("the namespace %q of identifiers %q, %q splits into %q, %q, %v", mp.NamespaceName(), customer, project, c, p, ok)
		}
	})
}
