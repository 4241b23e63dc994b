// cni-agent: the offline cluster's minimal CNI (kindnetd cannot be built from the Go proxy).
// One per node (DaemonSet, host network). It reads every Node's podCIDR and InternalIP from
// the API server and
//   - writes this node's CNI config: a Linux bridge with host-local IPAM over its podCIDR
//     (plugins from Debian's containernetworking-plugins, run by containerd on the node);
//   - routes every other node's podCIDR via that node's IP (the nodes share one L2 network);
//   - masquerades traffic from pods to anything outside the cluster's pod subnet.
//
// It does not enforce NetworkPolicy.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type config struct {
	nodeName  string
	apiServer string // https://host:port
	podSubnet string // the whole cluster's pod subnet
	confFile  string
	interval  time.Duration
}

type node struct {
	name, podCIDR, internalIP string
}

func main() {
	cfg := config{
		nodeName:  mustEnv("NODE_NAME"),
		podSubnet: mustEnv("POD_SUBNET"),
		confFile:  envOr("CNI_CONF_FILE", "/host/etc/cni/net.d/10-sagamesh.conflist"),
		interval:  10 * time.Second,
	}
	// kind patches CONTROL_PLANE_ENDPOINT in, so the agent does not depend on the
	// kubernetes Service (kube-proxy may not have programmed it yet).
	if ep := os.Getenv("CONTROL_PLANE_ENDPOINT"); ep != "" {
		cfg.apiServer = "https://" + ep
	} else {
		cfg.apiServer = "https://" + net.JoinHostPort(mustEnv("KUBERNETES_SERVICE_HOST"), mustEnv("KUBERNETES_SERVICE_PORT"))
	}
	if _, _, err := net.ParseCIDR(cfg.podSubnet); err != nil {
		log.Fatalf("POD_SUBNET %q is not a CIDR: %v", cfg.podSubnet, err)
	}
	client, err := apiClient()
	if err != nil {
		log.Fatalf("API client: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	setSysctls()
	routes := map[string]string{} // podCIDR -> via, the routes this agent installed
	for {
		if err := syncOnce(ctx, cfg, client, routes); err != nil {
			log.Printf("sync: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.interval):
		}
	}
}

func syncOnce(ctx context.Context, cfg config, c *apiCaller, routes map[string]string) error {
	nodes, err := c.nodes(ctx, cfg.apiServer)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.podCIDR == "" {
			continue
		}
		if n.name == cfg.nodeName {
			if err := writeConf(cfg.confFile, n.podCIDR); err != nil {
				return err
			}
			continue
		}
		if n.internalIP == "" {
			continue
		}
		seen[n.podCIDR] = true
		if routes[n.podCIDR] == n.internalIP {
			continue
		}
		if err := run("ip", "route", "replace", n.podCIDR, "via", n.internalIP); err != nil {
			return err
		}
		log.Printf("route %s via %s (%s)", n.podCIDR, n.internalIP, n.name)
		routes[n.podCIDR] = n.internalIP
	}
	for cidr := range routes { // nodes that left the cluster
		if !seen[cidr] {
			if err := run("ip", "route", "del", cidr); err != nil {
				log.Printf("removing route %s: %v", cidr, err)
			}
			delete(routes, cidr)
		}
	}
	return ensureMasquerade(cfg.podSubnet)
}

// writeConf writes the node's CNI config when it differs (atomically: containerd watches the dir).
func writeConf(path, podCIDR string) error {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "sagamesh",
		"plugins": []any{
			map[string]any{
				"type":        "bridge",
				"bridge":      "sgm0",
				"isGateway":   true,
				"ipMasq":      false, // see ensureMasquerade: pod-to-pod traffic keeps its source IP
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	log.Printf("wrote %s for podCIDR %s", path, podCIDR)
	return nil
}

// ensureMasquerade: pods reach the node network and beyond with the node's address;
// traffic inside the pod subnet is left alone.
func ensureMasquerade(podSubnet string) error {
	rule := []string{"-s", podSubnet, "!", "-d", podSubnet, "-m", "comment", "--comment", "sagamesh-cni: pod egress", "-j", "MASQUERADE"}
	if run("iptables", append([]string{"-t", "nat", "-C", "POSTROUTING"}, rule...)...) == nil {
		return nil
	}
	return run("iptables", append([]string{"-t", "nat", "-A", "POSTROUTING"}, rule...)...)
}

// setSysctls: forwarding between pods and nodes, and bridged traffic through iptables so
// kube-proxy's Service rules apply between pods on the same bridge.
func setSysctls() {
	for path, v := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":                 "1",
		"/proc/sys/net/bridge/bridge-nf-call-iptables":  "1",
		"/proc/sys/net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
			log.Printf("sysctl %s: %v", path, err)
		}
	}
}

type apiCaller struct {
	http *http.Client
}

func apiClient() (*apiCaller, error) {
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	return &apiCaller{http: &http.Client{
		Timeout:   15 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}}, nil
}

func (c *apiCaller) nodes(ctx context.Context, server string) ([]node, error) {
	// the projected token rotates: read it on every call
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/api/v1/nodes", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/nodes: %s", resp.Status)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				PodCIDR string `json:"podCIDR"`
			} `json:"spec"`
			Status struct {
				Addresses []struct {
					Type    string `json:"type"`
					Address string `json:"address"`
				} `json:"addresses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	out := make([]node, 0, len(list.Items))
	for _, it := range list.Items {
		n := node{name: it.Metadata.Name, podCIDR: it.Spec.PodCIDR}
		for _, a := range it.Status.Addresses {
			if a.Type == "InternalIP" && net.ParseIP(a.Address).To4() != nil {
				n.internalIP = a.Address
				break
			}
		}
		out = append(out, n)
	}
	return out, nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func mustEnv(k string) string {
	v := os.Getenv(k)
	if v == "" {
		log.Fatalf("%s is not set", k)
	}
	return v
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
