package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
)

// Environment variables of the client commands.
const (
	envEndpoint = "STAMPEDE_ENDPOINT"
	envProject  = "STAMPEDE_PROJECT"
	envDomain   = "STAMPEDE_DOMAIN"
	envSigV4    = "STAMPEDE_SIGV4"
	envOwnerID  = "STAMPEDE_OWNER_ID"
)

// userAgent names the command line in the service's logs.
const userAgent = "stampede-cli/2"

// clientFlags are the flags every client command takes, and what they
// resolve to.
type clientFlags struct {
	app      *app
	endpoint string
	project  string
	domain   string
	sigv4    string
	key      string
	out      outputFlags
}

// addClientFlags registers the common flags on cmd; fields are the names
// --output may pick for this command.
func (a *app) addClientFlags(cmd *cobra.Command, fields fieldSet) *clientFlags {
	f := &clientFlags{app: a, out: outputFlags{fields: fields}}
	fl := cmd.Flags()
	fl.StringVar(&f.endpoint, "endpoint", a.env(envEndpoint, client.DefaultEndpoint), "the API's URL: the local server, or a deployment's (env "+envEndpoint+")")
	fl.StringVar(&f.project, "project", a.getenv(envProject), "project (env "+envProject+")")
	fl.StringVar(&f.domain, "domain", a.getenv(envDomain), "domain (env "+envDomain+")")
	fl.StringVar(&f.sigv4, "sigv4", a.env(envSigV4, "auto"), "sign requests with AWS SigV4: auto (for *.amazonaws.com), on or off (env "+envSigV4+")")
	fl.StringVar(&f.key, "key", "", "the cache key (or give it as the argument)")
	f.out.register(cmd)
	_ = cmd.RegisterFlagCompletionFunc("sigv4", cobra.FixedCompletions([]string{"auto", "on", "off"}, cobra.ShellCompDirectiveNoFileComp))
	for _, name := range []string{"endpoint", "project", "domain", "key"} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
	}
	return f
}

// keyArgs accepts at most one argument, the key.
func keyArgs(_ *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageErrorf("unexpected argument %q (one key at most; quote a key with spaces)", args[1])
	}
	return nil
}

// resolve takes the key from the argument or --key and checks the flags
// every command shares, before any request.
func (f *clientFlags) resolve(args []string) error {
	switch {
	case len(args) == 1 && f.key != "":
		return usageErrorf("give the key either as --key or as the argument, not both")
	case len(args) == 1:
		f.key = args[0]
	case f.key == "":
		return usageErrorf("a key is required (the argument, or --key)")
	}
	if err := f.checkID("KEY"); err != nil {
		return err
	}
	if _, err := f.signMode(); err != nil {
		return err
	}
	return f.out.check()
}

// checkID validates project, domain and key with the service's own rules;
// keyName is how the command takes the key (KEY or --key).
func (f *clientFlags) checkID(keyName string) error {
	err := manager.ID{Project: f.project, Domain: f.domain, Key: f.key}.Validate()
	if err == nil {
		return nil
	}
	var me *manager.Error
	if !errors.As(err, &me) {
		return usageErrorf("%v", err)
	}
	field, reason, _ := strings.Cut(me.Message, ": ")
	switch {
	case field == "project" && reason == "required":
		return usageErrorf("--project is required (or set %s)", envProject)
	case field == "domain" && reason == "required":
		return usageErrorf("--domain is required (or set %s)", envDomain)
	case field == "key":
		return usageErrorf("%s: %s", keyName, reason)
	}
	return usageErrorf("--%s: %s", field, reason)
}

// signMode returns the client option of --sigv4.
func (f *clientFlags) signMode() (client.Option, error) {
	switch strings.ToLower(f.sigv4) {
	case "auto", "":
		return nil, nil
	case "on", "1", "true", "yes":
		return client.WithDefaultSigV4(), nil
	case "off", "0", "false", "no":
		return client.WithoutSigV4(), nil
	}
	return nil, usageErrorf("--sigv4 must be auto, on or off, not %q", f.sigv4)
}

func (f *clientFlags) scope() client.Scope { return client.Scope{Project: f.project, Domain: f.domain} }

// client builds the API client.
func (f *clientFlags) client() (*client.Client, error) {
	a := f.app
	opts := []client.Option{client.WithUserAgent(userAgent)}
	mode, err := f.signMode()
	if err != nil {
		return nil, err
	}
	if mode != nil {
		opts = append(opts, mode)
	}
	opts = append(opts, a.clientOptions...)
	if err := checkEndpoint(f.endpoint); err != nil {
		return nil, err
	}
	cl, err := client.New(f.endpoint, opts...)
	if err != nil {
		// The endpoint is well formed: SigV4 could not be set up.
		return nil, fmt.Errorf("%s: %w", f.endpoint, err)
	}
	return cl, nil
}

// checkEndpoint accepts what client.New does: http(s)://host[:port][/base-path].
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return usageErrorf("--endpoint %q: want http(s)://host[:port][/base-path]", endpoint)
	}
	return nil
}

// fail classifies the failure of a call to the service.
func (f *clientFlags) fail(err error) *cliError {
	if errors.Is(err, context.Canceled) {
		return &cliError{code: f.app.interruptedCode(), msg: "interrupted", err: err}
	}
	return classify(err, f.endpoint)
}
