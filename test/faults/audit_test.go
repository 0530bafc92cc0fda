package faults

import (
	"bufio"
	"encoding/json"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// auditEvent is what the tests read of kube-apiserver's audit events.
type auditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	RequestReceivedTimestamp time.Time `json:"requestReceivedTimestamp"`
}

// replicatorWrites lists the replicator ServiceAccount's write requests
// that kube-apiserver received at or after since, as "verb
// resource[/subresource] namespace/name", from its audit log — whichever
// process sent them. Leader election's own writes (its Lease and the
// Events about it in the release namespace) and SelfSubjectAccessReviews
// (questions, nothing is stored) are left out.
func replicatorWrites(since time.Time) []string {
	GinkgoHelper()
	f, err := os.Open(auditLog)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = f.Close() }()
	var writes []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e auditEvent
		Expect(json.Unmarshal(sc.Bytes(), &e)).To(Succeed())
		if e.Stage != "ResponseComplete" || e.ObjectRef == nil || e.RequestReceivedTimestamp.Before(since) {
			continue
		}
		ref := e.ObjectRef
		if ref.Resource == "leases" || ref.Resource == "selfsubjectaccessreviews" ||
			(ref.Resource == "events" && ref.Namespace == releaseNamespace) {
			continue
		}
		resource := ref.Resource
		if ref.Subresource != "" {
			resource += "/" + ref.Subresource
		}
		writes = append(writes, e.Verb+" "+resource+" "+ref.Namespace+"/"+ref.Name)
	}
	Expect(sc.Err()).NotTo(HaveOccurred())
	return writes
}
