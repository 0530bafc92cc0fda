// Package permissions asks the API server what the operator's own identity
// may do (SelfSubjectAccessReviews, which every identity may make), so that
// the operator can start without the optional rights and say what is
// missing instead of failing on the first forbidden request.
package permissions

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SelfAllowed asks the API server whether the client's own identity may do
// what attrs say.
func SelfAllowed(ctx context.Context, cs kubernetes.Interface, attrs authorizationv1.ResourceAttributes) (bool, error) {
	review, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}
