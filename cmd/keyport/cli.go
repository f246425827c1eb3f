package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory"
)

const usage = `Keyport: an OpenID Connect provider in one binary.

Usage:
  keyport serve [--config FILE]
  keyport user create --username NAME --email ADDR [--email-verified] [--name "Full Name"] [--admin]
                      --password-stdin | --invite | --system
  keyport user list
  keyport user set-password --username NAME --password-stdin
  keyport user set-email-verified --username NAME [--false]
  keyport user block|unblock --username NAME
  keyport user update --username NAME [--email ADDR] [--name "Full Name"] [--given-name NAME] [--family-name NAME]
                      [--admin=true|false] [--roles a,b] [--groups a,b] [--email-verified=true|false]
  keyport user delete|reset-2fa|verify-email|reset-link --username NAME
  keyport user create-token --username NAME --name LABEL --expires 90d [--scope read-write|read-only]
                            [--networks CIDRS]   (system accounts only; prints the token once)
  keyport user revoke-token --username NAME --id TOKEN_ID
  keyport user export [--out FILE]
  keyport user import [--dry-run] FILE
  keyport client create --id ID [--name NAME] --redirect-uri URI... [--post-logout-redirect-uri URI...]
                        [--public] [--grant authorization_code,refresh_token,client_credentials] [--secret-stdin]
                        [--skip-consent] [--jwt-access-tokens]
                        [--frontchannel-logout-uri URI [--frontchannel-logout-session-required]]
                        [--backchannel-logout-uri URI [--backchannel-logout-session-required]]
                        [--id-token-signed-response-alg RS256|ES256|EdDSA] [--userinfo-signed-response-alg ALG]
  keyport client update --id ID [--name NAME] [--redirect-uri URI...] [--post-logout-redirect-uri URI...]
                        [--grant GRANTS] [--public=true|false] [--skip-consent=true|false]
                        [--jwt-access-tokens=true|false] [--allowed-scopes SCOPES] [--allowed-groups GROUPS]
                        [--access-token-lifetime 10m] [--id-token-lifetime 10m] [--refresh-token-lifetime 720h]
                        [--frontchannel-logout-uri URI] [--frontchannel-logout-session-required=true|false]
                        [--backchannel-logout-uri URI] [--backchannel-logout-session-required=true|false]
                        [--id-token-signed-response-alg RS256|ES256|EdDSA|""] [--userinfo-signed-response-alg ALG|""]
  keyport client rotate-secret --id ID [--grace 24h] [--revoke-tokens]
  keyport client list
  keyport client delete --id ID
  keyport client approve --id ID   (an app that registered itself held for approval)
  keyport registration create-token --name LABEL --expires 24h [--max-uses N] [--hold-for-approval]
                        (an initial access token for dynamic client registration; printed once)
  keyport registration list-tokens
  keyport registration revoke-token --id TOKEN_ID
  keyport keys rotate
  keyport keys new-sealing-key --to FILE
                        (a sealing key for replicas that share a PostgreSQL database)
  keyport group list
  keyport group create --name NAME [--description TEXT]
  keyport group rename --name NAME --to NEW
  keyport group delete --name NAME
  keyport group add-member|remove-member --name NAME --username NAME
                        (--username takes a username or an email address)
  keyport directory list
  keyport directory test --id ID
  keyport directory sync --id ID
  keyport directory add|update --id ID [--provider ldap|oidc] (add) [--disabled=true|false] (update)
                        [--name NAME] [--handles-second-factor] [--secret-stdin] (bind password or client secret)
                        ldap: [--url URL] [--start-tls] [--insecure-skip-verify] [--bind-dn DN] [--user-base-dn DN]
                              [--user-filter F] [--login-attributes A,B] [--disabled-filter F] [--group-base-dn DN]
                              [--group-filter F] [--member-attribute A]
                        oidc: [--issuer URL] [--client-id ID] [--scopes S] [--username-claim C] [--email-claim C]
                              [--groups-claim C] [--button-label TEXT] [--link-by-verified-email] [--create-users]
                        (config.toml's [[directories]] keys; update changes only the flags given, "" resets one)
  keyport audit list [--user NAME] [--type a,b] [--since 24h] [--limit N]
  keyport audit export [--out FILE]
  keyport backup --to FILE [--force]
                 | --check FILE   (checks a backup as restore would; changes nothing)
  keyport restore --from FILE     (with keyport serve stopped; keeps the replaced
                        database as keyport.db.before-restore-TIMESTAMP)
  keyport check                  (checks the configured store as serve would open it, e.g. after
                        pg_restore or a point-in-time recovery; changes nothing)
  keyport health [--url URL]     (GET /healthz on the listen address; exit 0 when it answers 200)
  keyport migrate --from bolt|postgres --to postgres|bolt [--dsn DSN]
                        (copies every record into an empty store and checks the copy; stop keyport serve first)
  keyport mail test --to ADDR [--lang en|de]
                        (sends a test message with the [mail] settings)

Every command takes --config FILE (default: the built-in configuration;
KEYPORT_CONFIG names a file too). KEYPORT_ISSUER, KEYPORT_LISTEN and
KEYPORT_DATA_DIR, KEYPORT_STORAGE_DSN and KEYPORT_SECRET_KEY_FILE override
the file.

The user and audit commands (but user list) work while keyport serve
runs: they reach it through its control socket in the data directory.
NAME is a username or an email address.
`

// cli carries what every command needs.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = c.serve(ctx, rest)
	case "user":
		err = c.sub(ctx, "user", rest, map[string]func(context.Context, []string) error{
			"create": c.userCreate, "list": c.userList, "set-password": c.userSetPassword, "set-email-verified": c.userSetEmailVerified,
			"block":   func(ctx context.Context, a []string) error { return c.userBlock(ctx, a, true) },
			"unblock": func(ctx context.Context, a []string) error { return c.userBlock(ctx, a, false) },
			"export":  c.userExport, "import": c.userImport,
			"delete": c.userDelete, "update": c.userUpdate, "reset-2fa": c.userResetSecondFactors,
			"verify-email": c.userVerifyEmail, "reset-link": c.userResetLink,
			"create-token": c.userCreateToken, "revoke-token": c.userRevokeToken,
		})
	case "client":
		err = c.sub(ctx, "client", rest, map[string]func(context.Context, []string) error{
			"create": c.clientCreate, "list": c.clientList, "delete": c.clientDelete,
			"update": c.clientUpdate, "rotate-secret": c.clientRotateSecret,
			"approve": c.clientApprove,
		})
	case "registration":
		err = c.sub(ctx, "registration", rest, map[string]func(context.Context, []string) error{
			"create-token": c.registrationCreateToken, "list-tokens": c.registrationListTokens, "revoke-token": c.registrationRevokeToken,
		})
	case "directory":
		err = c.sub(ctx, "directory", rest, map[string]func(context.Context, []string) error{
			"list": c.directoryList, "test": c.directoryTest, "sync": c.directorySync,
			"add": c.directoryAdd, "update": c.directoryUpdate,
		})
	case "audit":
		err = c.sub(ctx, "audit", rest, map[string]func(context.Context, []string) error{"list": c.auditList, "export": c.auditExport})
	case "group":
		err = c.group(ctx, rest)
	case "backup":
		err = c.backup(ctx, rest)
	case "restore":
		err = c.restore(ctx, rest)
	case "check":
		err = c.check(ctx, rest)
	case "health":
		err = c.health(ctx, rest)
	case "migrate":
		err = c.migrate(ctx, rest)
	case "keys":
		err = c.sub(ctx, "keys", rest, map[string]func(context.Context, []string) error{"rotate": c.keysRotate, "new-sealing-key": c.newSealingKey})
	case "mail":
		err = c.sub(ctx, "mail", rest, map[string]func(context.Context, []string) error{"test": c.mailTest})
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keyport: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "keyport: %s\n", ue.msg)
		return 2
	}
	fmt.Fprintf(stderr, "keyport: %s\n", messageOf(err))
	return 1
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// messageOf shows account errors by their user-facing message.
func messageOf(err error) string {
	var ae *account.Error
	if errors.As(err, &ae) && ae.Code != account.Internal {
		return ae.Message
	}
	return err.Error()
}

func (c *cli) sub(ctx context.Context, group string, args []string, cmds map[string]func(context.Context, []string) error) error {
	if len(args) == 0 {
		return usageError{fmt.Sprintf("%s: missing subcommand\n\n%s", group, usage)}
	}
	fn, ok := cmds[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("%s: unknown subcommand %q\n\n%s", group, args[0], usage)}
	}
	return fn(ctx, args[1:])
}

func (c *cli) flags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("keyport "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfg := fs.String("config", "", "configuration file (TOML)")
	return fs, cfg
}

func (c *cli) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// loadConfig loads and validates the configuration. Its warnings are about
// serving (an http:// issuer, a long code lifetime): serve logs them, and
// other commands do not repeat them.
func (c *cli) loadConfig(path string) (*config.Config, error) {
	cfg, _, err := c.loadConfigWarnings(path)
	return cfg, err
}

func (c *cli) loadConfigWarnings(path string) (*config.Config, []string, error) {
	if path == "" {
		path = c.getenv("KEYPORT_CONFIG")
	}
	cfg, warnings, err := config.Load(path, c.getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration is invalid:\n%w", err)
	}
	return cfg, warnings, nil
}

func (c *cli) serve(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("serve")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, warnings, err := c.loadConfigWarnings(*cfgPath)
	if err != nil {
		return err
	}
	log := newFormatLogger(cfg.LogLevel, cfg.LogFormat, c.stderr)
	defer flushLog(log)
	for _, w := range warnings {
		log.Warn("configuration: " + w)
	}
	// zitadel's op logs through the default logger; route it through ours.
	slog.SetDefault(log)
	tuneGC(c.getenv)
	m, err := Load(cfg, log, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Run(ctx)
}

// serverGCPercent is the collector's target for `keyport serve` when GOGC is
// not set. At Go's default (100) the heap goal sits just above the server's
// small live set: the collector runs every few dozen token requests, and the
// runtime returns argon2id's 7 MiB to the OS after a sign-in and faults it
// back in at the next. 400 costs tens of MiB and, on the 2-core reference
// machine with the server on one core (scripts/bench.sh), took userinfo from
// 9.1k to 15.4k req/s and refresh from 603 to 655 req/s.
const serverGCPercent = 400

// tuneGC applies serverGCPercent unless the operator set GOGC.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}

// maxStdinSecret bounds what readSecret accepts.
const maxStdinSecret = 4096

// readSecret reads a password or secret from stdin: the whole input minus
// one trailing newline, so `echo pw | keyport ...` works.
func (c *cli) readSecret(what string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(c.stdin, maxStdinSecret+1))
	if err != nil {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	if len(b) > maxStdinSecret {
		// Never truncate silently: the stored secret would not be the one
		// the operator gave.
		return "", fmt.Errorf("%s on stdin is longer than %d bytes", what, maxStdinSecret)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", usageError{what + " on stdin is empty"}
	}
	return s, nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func (c *cli) clientCreate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("client create")
	id := fs.String("id", "", "client ID")
	name := fs.String("name", "", "display name")
	var redirects, postLogout listFlag
	fs.Var(&redirects, "redirect-uri", "redirect URI (repeatable)")
	fs.Var(&postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
	public := fs.Bool("public", false, "public client (no secret; PKCE required)")
	grants := fs.String("grant", "", "grant types, comma separated (default authorization_code,refresh_token)")
	jwt := fs.Bool("jwt-access-tokens", false, "issue JWT access tokens instead of opaque ones")
	skipConsent := fs.Bool("skip-consent", false, "first-party app: never ask for consent")
	secretStdin := fs.Bool("secret-stdin", false, "read the client secret from standard input instead of generating one")
	fcURI, fcSession, bcURI, bcSession := logoutFlags(fs)
	signingAlg, userinfoAlg := signingAlgFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return usageError{"client create needs --id"}
	}
	n := clientFields{ID: *id, Name: *name, RedirectURIs: redirects, PostLogoutRedirectURIs: postLogout,
		Public: *public, AccessTokenJWT: *jwt, SkipConsent: *skipConsent, GrantTypes: splitList(*grants)}
	n.FrontchannelLogoutURI, n.FrontchannelLogoutSessionRequired = *fcURI, *fcSession
	n.BackchannelLogoutURI, n.BackchannelLogoutSessionRequired = *bcURI, *bcSession
	n.IDTokenSignedResponseAlg, n.UserinfoSignedResponseAlg = *signingAlg, *userinfoAlg
	if *secretStdin {
		s, err := c.readSecret("secret")
		if err != nil {
			return err
		}
		n.Secret = s
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		Client clientFields `json:"client"`
		Secret string       `json:"secret"`
	}
	if _, err := api.call(ctx, http.MethodPost, "/clients", n, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created client %s (%s)\n", out.Client.ID, strings.Join(out.Client.GrantTypes, ", "))
	if out.Secret != "" && !*secretStdin {
		fmt.Fprintf(c.stdout, "client secret (shown once, store it now): %s\n", out.Secret)
	}
	return nil
}

// clientFields is an app as the management API reads and writes it
// (portal/apiapps.go); the command line sends only the fields it sets.
type clientFields struct {
	ID                     string   `json:"id,omitempty"`
	Name                   string   `json:"name,omitempty"`
	Public                 bool     `json:"public,omitempty"`
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string `json:"grant_types,omitempty"`
	SkipConsent            bool     `json:"skip_consent,omitempty"`
	AccessTokenJWT         bool     `json:"access_token_jwt,omitempty"`
	Secret                 string   `json:"secret,omitempty"`
	// Static is only read: an app from config.toml.
	Static bool `json:"static,omitempty"`

	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`

	IDTokenSignedResponseAlg  string `json:"id_token_signed_response_alg,omitempty"`
	UserinfoSignedResponseAlg string `json:"userinfo_signed_response_alg,omitempty"`
}

// signingAlgFlags are the flags of an app's signing algorithms (ID
// tokens, userinfo), for create and update.
func signingAlgFlags(fs *flag.FlagSet) (idToken, userinfo *string) {
	idToken = fs.String("id-token-signed-response-alg", "", "signing algorithm of the app's ID tokens: RS256, ES256 or EdDSA (\"\": the [keys] algorithm)")
	userinfo = fs.String("userinfo-signed-response-alg", "", "answer the app's userinfo requests with a JWT signed with RS256, ES256 or EdDSA (\"\": plain JSON)")
	return idToken, userinfo
}

// logoutFlags are the flags of an app's logout URIs (OpenID Connect
// Front-Channel and Back-Channel Logout 1.0), for create and update.
func logoutFlags(fs *flag.FlagSet) (fcURI *string, fcSession *bool, bcURI *string, bcSession *bool) {
	fcURI = fs.String("frontchannel-logout-uri", "", "front-channel logout URI: loaded in a hidden iframe when a person signs out of Keyport (https, or http on loopback; \"\" removes it)")
	fcSession = fs.Bool("frontchannel-logout-session-required", false, "add iss and sid to the front-channel logout URI")
	bcURI = fs.String("backchannel-logout-uri", "", "back-channel logout URI: receives a signed logout token when a person's session ends (https, or http on loopback; \"\" removes it)")
	bcSession = fs.Bool("backchannel-logout-session-required", false, "the app requires sid in logout tokens")
	return fcURI, fcSession, bcURI, bcSession
}

func (c *cli) clientList(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("client list")
	api, err := c.open(fs, cfgPath, args, nil)
	if err != nil {
		return err
	}
	defer api.close()
	var list struct {
		Items []clientFields `json:"items"`
	}
	if _, err := api.call(ctx, http.MethodGet, "/clients", nil, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tGRANTS\tREDIRECT URIS\tSOURCE")
	for _, cl := range list.Items {
		kind, src := "confidential", "database"
		if cl.Public {
			kind = "public"
		}
		if cl.Static {
			src = "config"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, cl.Name, kind, strings.Join(cl.GrantTypes, ","), strings.Join(cl.RedirectURIs, " "), src)
	}
	return tw.Flush()
}

func (c *cli) clientDelete(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("client delete")
	id := fs.String("id", "", "client ID")
	api, err := c.open(fs, cfgPath, args, required("client delete needs --id", id))
	if err != nil {
		return err
	}
	defer api.close()
	if _, err := api.call(ctx, http.MethodDelete, "/clients/"+url.PathEscape(*id), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted client %s\n", *id)
	return nil
}

// clientUpdate edits the fields whose flags are given and leaves the rest
// as they are. A list flag replaces the whole list; given as "" it empties
// it.
func (c *cli) clientUpdate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("client update")
	id := fs.String("id", "", "client ID")
	name := fs.String("name", "", "display name")
	var redirects, postLogout listFlag
	fs.Var(&redirects, "redirect-uri", "redirect URI (repeatable; replaces the list; \"\" empties it)")
	fs.Var(&postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeatable; replaces the list; \"\" empties it)")
	grants := fs.String("grant", "", "grant types, comma separated")
	public := fs.Bool("public", false, "public client (true) or confidential (false); a switch drops the secret: rotate-secret gives a confidential app its new one")
	jwt := fs.Bool("jwt-access-tokens", false, "JWT access tokens (true) or opaque ones (false)")
	skipConsent := fs.Bool("skip-consent", false, "first-party app: never ask for consent (true), or ask (false)")
	scopes := fs.String("allowed-scopes", "", "scopes the app may receive, comma separated (\"\": every scope); keyport:admin or keyport:admin.read grants the management API to a client_credentials app")
	groups := fs.String("allowed-groups", "", "groups whose members may sign in, comma separated (\"\": everyone)")
	access := fs.Duration("access-token-lifetime", 0, "access token lifetime (0: the server's default)")
	idTok := fs.Duration("id-token-lifetime", 0, "ID token lifetime (0: the server's default)")
	refresh := fs.Duration("refresh-token-lifetime", 0, "refresh token lifetime (0: the server's default)")
	fcURI, fcSession, bcURI, bcSession := logoutFlags(fs)
	signingAlg, userinfoAlg := signingAlgFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return usageError{"client update needs --id"}
	}
	patch := map[string]any{}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			patch["name"] = *name
		case "redirect-uri":
			patch["redirect_uris"] = nonEmpty(redirects)
		case "post-logout-redirect-uri":
			patch["post_logout_redirect_uris"] = nonEmpty(postLogout)
		case "grant":
			patch["grant_types"] = splitList(*grants)
		case "public":
			patch["public"] = *public
		case "jwt-access-tokens":
			patch["access_token_jwt"] = *jwt
		case "skip-consent":
			patch["skip_consent"] = *skipConsent
		case "allowed-scopes":
			patch["allowed_scopes"] = splitList(*scopes)
		case "allowed-groups":
			patch["allowed_groups"] = splitList(*groups)
		case "frontchannel-logout-uri":
			patch["frontchannel_logout_uri"] = *fcURI
		case "frontchannel-logout-session-required":
			patch["frontchannel_logout_session_required"] = *fcSession
		case "backchannel-logout-uri":
			patch["backchannel_logout_uri"] = *bcURI
		case "backchannel-logout-session-required":
			patch["backchannel_logout_session_required"] = *bcSession
		case "id-token-signed-response-alg":
			patch["id_token_signed_response_alg"] = *signingAlg
		case "userinfo-signed-response-alg":
			patch["userinfo_signed_response_alg"] = *userinfoAlg
		case "access-token-lifetime", "id-token-lifetime", "refresh-token-lifetime":
			d := map[string]time.Duration{"access-token-lifetime": *access, "id-token-lifetime": *idTok, "refresh-token-lifetime": *refresh}[f.Name]
			if d < 0 || d%time.Second != 0 {
				bad = usageError{"--" + f.Name + " must be whole seconds or more, such as 10m"}
			}
			patch[strings.ReplaceAll(f.Name, "-", "_")] = int64(d / time.Second)
		}
	})
	if bad != nil {
		return bad
	}
	if len(patch) == 0 {
		return usageError{"client update: say what to change (see keyport --help)"}
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		ID        string `json:"id"`
		Public    bool   `json:"public"`
		HasSecret bool   `json:"has_secret"`
	}
	if _, err := api.call(ctx, http.MethodPatch, "/clients/"+url.PathEscape(*id), patch, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "updated client %s\n", out.ID)
	if !out.Public && !out.HasSecret {
		fmt.Fprintf(c.stdout, "it has no secret now: give it one with keyport client rotate-secret --id %s\n", out.ID)
	}
	return nil
}

// clientRotateSecret gives a confidential app a new secret, printed once;
// the old one keeps working for --grace; --revoke-tokens also revokes
// every token issued to the app so far.
func (c *cli) clientRotateSecret(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("client rotate-secret")
	id := fs.String("id", "", "client ID")
	grace := fs.Duration("grace", 0, "how long the old secret keeps working, such as 24h (default 0: it stops at once; at most 720h)")
	revoke := fs.Bool("revoke-tokens", false, "also revoke every access and refresh token issued to the app so far (for a secret that leaked; default: they keep working until they expire)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return usageError{"client rotate-secret needs --id"}
	}
	if *grace < 0 {
		return usageError{"--grace must not be negative"}
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		Secret              string     `json:"secret"`
		PreviousSecretUntil *time.Time `json:"previous_secret_until"`
	}
	body := map[string]any{"grace_seconds": int64((*grace + time.Second - 1) / time.Second)}
	if *revoke {
		body["revoke_tokens"] = true
	}
	if _, err := api.call(ctx, http.MethodPost, "/clients/"+url.PathEscape(*id)+"/rotate-secret", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "new client secret for %s (shown once, store it now): %s\n", *id, out.Secret)
	if out.PreviousSecretUntil != nil {
		fmt.Fprintf(c.stdout, "the previous secret keeps working until %s\n", out.PreviousSecretUntil.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(c.stdout, "the previous secret stopped working")
	}
	if *revoke {
		fmt.Fprintln(c.stdout, "every token issued to the app so far was revoked")
	}
	return nil
}

func (c *cli) keysRotate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("keys rotate")
	api, err := c.open(fs, cfgPath, args, nil)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		SigningKeyID string            `json:"signing_key_id"`
		SigningKeys  map[string]string `json:"signing_keys"`
	}
	if _, err := api.call(ctx, http.MethodPost, "/keys/rotate", nil, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "new signing key %s; the previous one stays in JWKS until its tokens expire\n", out.SigningKeyID)
	// The keys of the algorithms apps chose were replaced too.
	for _, alg := range account.SigningAlgorithms {
		if kid := out.SigningKeys[alg]; kid != "" && kid != out.SigningKeyID {
			fmt.Fprintf(c.stdout, "new %s signing key %s; the previous one stays in JWKS until its tokens expire\n", alg, kid)
		}
	}
	return nil
}

func (c *cli) directoryList(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("directory list")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tURL\tUSERS UNDER\tSYNC EVERY")
	for _, d := range cfg.Directories {
		where := d.URL
		if d.Type == "oidc" {
			where = d.Issuer
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Type, where, d.UserBaseDN, d.SyncInterval.Duration)
	}
	// Directories added on the admin page live in the database: ask the
	// management API (the running server's, or this process's).
	var stored struct {
		Items []struct {
			ID, Name, Provider string
			Stored             bool
		} `json:"items"`
	}
	api, err := c.connect(*cfgPath)
	if err == nil {
		defer api.close()
		_, err = api.call(ctx, http.MethodGet, "/directories", nil, &stored)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "keyport: directories added on the admin page are not listed: %v\n", err)
	}
	for _, st := range stored.Items {
		if st.Stored {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.ID, st.Name, st.Provider, "(admin page)", "", "1h0m0s")
		}
	}
	return tw.Flush()
}

// directoryTest reports bind success, how many users the filter finds and
// a sample mapped user, or the failing step with the server's message.
func (c *cli) directoryTest(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("directory test")
	id := fs.String("id", "", "the directory's id")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	rep, err := c.testDirectory(ctx, cfg, *id)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "directory %s: connected and bound; the filter finds %d users\n", *id, rep.Users)
	if u := rep.Sample; u != nil {
		fmt.Fprintf(c.stdout, "sample: username=%s email=%s name=%q groups=%v id=%s\n", u.Username, u.Email, u.DisplayName, u.Groups, u.ID)
	}
	return nil
}

// testDirectory tests a directory from the configuration file without
// touching the database (so it works while serve runs), or else one added
// on the admin page.
func (c *cli) testDirectory(ctx context.Context, cfg *config.Config, id string) (directory.TestReport, error) {
	srcs, err := openDirectories(cfg.Directories, directoryEnv(cfg.Issuer, newLogger("error", c.stderr), time.Now))
	if err != nil {
		return directory.TestReport{}, err
	}
	defer closeSources(srcs)
	for _, s := range srcs {
		if s, ok := s.(directory.Tester); ok && s.ID() == id {
			rep, err := s.Test(ctx)
			if err != nil {
				return rep, fmt.Errorf("directory %s: %w", id, err)
			}
			return rep, nil
		}
	}
	m, err := openStore(cfg, newLogger("error", c.stderr), 300*time.Millisecond, nil)
	if err != nil {
		return directory.TestReport{}, err
	}
	defer m.Close()
	rep, err := m.Accounts.Directories.TestDirectory(ctx, id)
	if account.ErrorCode(err) == account.NotFound {
		return rep, usageError{fmt.Sprintf("no directory with id %q (see keyport directory list)", id)}
	}
	if err != nil {
		return rep, fmt.Errorf("directory %s: %w", id, err)
	}
	return rep, nil
}

func (c *cli) directorySync(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("directory sync")
	id := fs.String("id", "", "the directory's id")
	api, err := c.open(fs, cfgPath, args, required("directory sync needs --id", id))
	if err != nil {
		return err
	}
	defer api.close()
	var rep struct {
		Created, Updated, Blocked, Failed int
		Errors                            []string
	}
	if _, err := api.call(ctx, http.MethodPost, "/directories/"+url.PathEscape(*id)+"/sync", nil, &rep); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "directory %s synced: %d created, %d updated, %d blocked, %d failed\n", *id, rep.Created, rep.Updated, rep.Blocked, rep.Failed)
	for _, e := range rep.Errors {
		fmt.Fprintf(c.stdout, "  %s\n", e)
	}
	return nil
}

// nonEmpty drops empty values of a repeated flag; none left is the empty
// list, which clears the field.
func nonEmpty(l []string) []string {
	out := []string{}
	for _, v := range l {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
