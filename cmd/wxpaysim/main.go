// Command wxpaysim runs the local WeChat Pay APIv3 simulator
// (internal/wxpaysim) on a loopback address.
//
//	wxpaysim -keys .local/testkeys.json -notify-url http://127.0.0.1:3000/notify/wxpay
//	wxpaysim -config sim.json -addr 127.0.0.1:8787 -time-scale 0.01
//
// -keys registers the merchant of a testkeys bundle and signs with the
// bundle's platform keys; -config registers any number of merchants
// ({"merchants":[{mchid, cert_serial, public_key_pem, apiv3_key, appids,
// service_ids, mode, notify_url}], "platform_bundle": "path"}). Without a
// bundle the platform keys are generated and live only as long as the
// process. The admin API is served under /sim/.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "wxpaysim:", err)
		os.Exit(1)
	}
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// fileConfig is the -config file.
type fileConfig struct {
	Merchants []wxpaysim.MerchantSpec `json:"merchants"`
	// PlatformBundle is a testkeys bundle whose platform keys the simulator
	// signs with; relative to the config file.
	PlatformBundle string `json:"platform_bundle"`
}

// run parses args, serves the simulator until ctx ends, then shuts down.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wxpaysim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8787", "listen address")
	configPath := fs.String("config", "", "JSON config: merchants and an optional platform_bundle")
	keysPath := fs.String("keys", "", "testkeys bundle: its merchant is registered and its platform keys sign")
	mode := fs.String("mode", string(wxpaysim.ModePublicKey), "default merchant mode: public_key, certificate or mixed")
	notifyURL := fs.String("notify-url", "", "default notify_url for merchants that have none")
	timeScale := fs.Float64("time-scale", 1, "multiplier of the notification retry schedule (0.01: 15 s -> 150 ms)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *timeScale <= 0 {
		return fmt.Errorf("%w: -time-scale must be > 0", errUsage)
	}
	logger := log.New(stdout, "wxpaysim: ", log.LstdFlags)

	var cfg fileConfig
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return fmt.Errorf("config %s: %w", *configPath, err)
		}
		if cfg.PlatformBundle != "" && !filepath.IsAbs(cfg.PlatformBundle) {
			cfg.PlatformBundle = filepath.Join(filepath.Dir(*configPath), cfg.PlatformBundle)
		}
	}
	if *keysPath != "" && cfg.PlatformBundle != "" {
		return fmt.Errorf("%w: both -keys and the config's platform_bundle name platform keys; keep one", errUsage)
	}

	var merchants []wxpaysim.MerchantConfig
	var platform *testkeys.Platform
	if *keysPath != "" {
		m, p, err := testkeys.LoadBundle(*keysPath)
		if err != nil {
			return fmt.Errorf("-keys: %w", err)
		}
		platform = p
		merchants = append(merchants, wxpaysim.MerchantFromTestKeys(m, wxpaysim.Mode(*mode), *notifyURL))
	}
	if cfg.PlatformBundle != "" {
		_, p, err := testkeys.LoadBundle(cfg.PlatformBundle)
		if err != nil {
			return fmt.Errorf("platform_bundle: %w", err)
		}
		platform = p
	}
	for _, sp := range cfg.Merchants {
		if sp.Mode == "" {
			sp.Mode = wxpaysim.Mode(*mode)
		}
		if sp.NotifyURL == "" {
			sp.NotifyURL = *notifyURL
		}
		c, err := sp.Config()
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		merchants = append(merchants, c)
	}

	sim, err := wxpaysim.New(wxpaysim.Config{Platform: platform, TimeScale: *timeScale, Logf: logger.Printf})
	if err != nil {
		return err
	}
	defer sim.Close()
	for _, m := range merchants {
		if err := sim.AddMerchant(m); err != nil {
			return err
		}
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	base := "http://" + ln.Addr().String()
	p := sim.Platform()
	logger.Printf("WeChat Pay APIv3 simulator listening on %s", base)
	logger.Printf("platform public key id: %s", p.PublicKeyID)
	logger.Printf("platform certificate serial: %s", p.CertSerial)
	if platform == nil {
		logger.Printf("platform keys were generated for this run (pass -keys or platform_bundle to keep them)")
	}
	for _, m := range merchants {
		logger.Printf("merchant %s: mode %s, cert serial %s, notify_url %q", m.MchID, m.Mode, m.CertSerial, m.NotifyURL)
	}
	logger.Printf("admin API: %s/sim/", base)

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	<-served
	sim.Close()
	logger.Printf("stopped")
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
