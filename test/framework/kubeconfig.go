package framework

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AdminKubeconfig returns a kubeconfig for a cluster admin (system:masters).
func (f *Framework) AdminKubeconfig() ([]byte, error) {
	user, err := f.Env.ControlPlane.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, err
	}
	return user.KubeConfig()
}

// TokenKubeconfig requests a token for the ServiceAccount with the
// TokenRequest API, as `kubectl create token` does, and returns a kubeconfig
// that authenticates with it alone.
func (f *Framework) TokenKubeconfig(ctx context.Context, sa ServiceAccount, expirationSeconds int64) ([]byte, error) {
	cs, err := kubernetes.NewForConfig(f.Config)
	if err != nil {
		return nil, err
	}
	tr, err := cs.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(expirationSeconds)},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("requesting a token for %s: %w", sa.UserName(), err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: f.Config.Host, CertificateAuthorityData: f.Config.CAData}
	cfg.AuthInfos[sa.Name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[sa.Name] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: sa.Name, Namespace: sa.Namespace}
	cfg.CurrentContext = sa.Name
	return clientcmd.Write(*cfg)
}
