package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// health asks the server on this configuration's listen address whether it
// is alive (GET /healthz) and succeeds on 200: a container HEALTHCHECK for
// images without a shell or curl (distroless), and a probe for scripts.
func (c *cli) health(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("health")
	target := fs.String("url", "", "the URL to check (default: http://LISTEN/healthz from the configuration)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	u := *target
	if u == "" {
		cfg, err := c.loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		u = "http://" + localAddr(cfg.Listen) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageError{fmt.Sprintf("--url: %v", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s: %s", u, resp.Status, body)
	}
	fmt.Fprintf(c.stdout, "%s: %s\n", u, resp.Status)
	return nil
}

// localAddr turns a listen address into one to connect to on this host:
// every interface (":8080", "0.0.0.0:8080", "[::]:8080") is reached on
// loopback.
func localAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}
