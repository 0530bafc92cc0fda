package framework

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServiceAccount is an identity made for a test: a ServiceAccount bound to
// exactly the given roles, and a rest.Config that impersonates it.
type ServiceAccount struct {
	Namespace, Name string
	Config          *rest.Config
}

// UserName is the ServiceAccount's user name as the API server sees it.
func (sa ServiceAccount) UserName() string {
	return "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
}

// CreateServiceAccount creates namespace/name and binds it to every
// ClusterRole and Role in the given files (paths relative to the repo
// root); Roles are bound in their own namespace. The returned config
// impersonates the ServiceAccount, with the rate limits the operator uses.
func (f *Framework) CreateServiceAccount(ctx context.Context, namespace, name string, roleFiles ...string) (ServiceAccount, error) {
	if err := f.ensure(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}); err != nil {
		return ServiceAccount{}, err
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}
	for _, file := range roleFiles {
		objs, err := ReadObjects(filepath.Join(RepoRoot(), file))
		if err != nil {
			return ServiceAccount{}, err
		}
		for _, obj := range objs {
			if err := f.ensure(ctx, obj); err != nil {
				return ServiceAccount{}, err
			}
			if err := f.bind(ctx, obj, subject); err != nil {
				return ServiceAccount{}, err
			}
		}
	}
	cfg := rest.CopyConfig(f.Config)
	sa := ServiceAccount{Namespace: namespace, Name: name, Config: cfg}
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: sa.UserName(),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return sa, nil
}

// bind binds subject to obj when obj is a ClusterRole or a Role.
func (f *Framework) bind(ctx context.Context, obj client.Object, subject rbacv1.Subject) error {
	bindingName := subject.Namespace + "-" + subject.Name + "-" + obj.GetName()
	switch obj.GetObjectKind().GroupVersionKind().Kind {
	case "ClusterRole":
		return f.ensure(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: obj.GetName()},
			Subjects:   []rbacv1.Subject{subject},
		})
	case "Role":
		return f.ensure(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName, Namespace: obj.GetNamespace()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: obj.GetName()},
			Subjects:   []rbacv1.Subject{subject},
		})
	}
	return nil
}

// ensure creates obj, and its namespace first, unless they already exist.
func (f *Framework) ensure(ctx context.Context, obj client.Object) error {
	if ns := obj.GetNamespace(); ns != "" {
		err := f.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := f.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	return nil
}

// ReadObjects decodes a multi-document YAML file into unstructured objects.
func ReadObjects(path string) ([]client.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []client.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		u := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
