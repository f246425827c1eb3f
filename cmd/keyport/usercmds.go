package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyport/keyport/account"
)

// The `keyport user ...` commands. All but `user list` go through the
// management API (adminClient), so they work whether or not `keyport
// serve` runs, with the API's rules and audit entries (actor "cli").
// Users are named as people name them, by username or email
// (--username), and found through GET /users/by-login?login=.

// apiUser is what the commands read of a user of the API.
type apiUser struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	GivenName     string   `json:"given_name"`
	FamilyName    string   `json:"family_name"`
	Admin         bool     `json:"admin"`
	System        bool     `json:"system"`
	Blocked       bool     `json:"blocked"`
	Roles         []string `json:"roles"`
	Groups        []string `json:"groups"`
}

// apiUserDetail is what the commands read of GET /users/{id}.
type apiUserDetail struct {
	User         apiUser           `json:"user"`
	Sessions     []json0           `json:"sessions"`
	Consents     []json0           `json:"consents"`
	APITokens    []json0           `json:"api_tokens"`
	AppPasswords []json0           `json:"app_passwords"`
	Passkeys     []json0           `json:"passkeys"`
	Locked       map[string]string `json:"locked"`
}

// json0 is an item only counted.
type json0 struct{}

// lookupUser finds the user whose username or email is login.
func (a *adminClient) lookupUser(ctx context.Context, login string) (apiUserDetail, error) {
	var d apiUserDetail
	// In the query, not the path: a login may hold a "/".
	_, err := a.call(ctx, http.MethodGet, "/users/by-login?"+url.Values{"login": {login}}.Encode(), nil, &d)
	return d, err
}

// userCommand is the frame of a command on one user: its flags (with
// --username), then the API and the user.
type userCommand struct {
	c        *cli
	fs       *flag.FlagSet
	cfgPath  *string
	username *string
}

func (c *cli) userCommand(name string) *userCommand {
	fs, cfgPath := c.flags("user " + name)
	return &userCommand{c: c, fs: fs, cfgPath: cfgPath, username: fs.String("username", "", "the user's username or email")}
}

// run parses args, connects and finds the user; the caller closes the
// client.
func (u *userCommand) run(ctx context.Context, args []string, name string, before func() error) (*adminClient, apiUserDetail, error) {
	if err := u.c.parse(u.fs, args); err != nil {
		return nil, apiUserDetail{}, err
	}
	if *u.username == "" {
		return nil, apiUserDetail{}, usageError{"user " + name + " needs --username"}
	}
	if before != nil {
		if err := before(); err != nil {
			return nil, apiUserDetail{}, err
		}
	}
	api, err := u.c.connect(*u.cfgPath)
	if err != nil {
		return nil, apiUserDetail{}, err
	}
	d, err := api.lookupUser(ctx, *u.username)
	if err != nil {
		api.close()
		return nil, apiUserDetail{}, err
	}
	return api, d, nil
}

func (c *cli) userCreate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("user create")
	username := fs.String("username", "", "sign-in name")
	email := fs.String("email", "", "email address")
	name := fs.String("name", "", "full name")
	verified := fs.Bool("email-verified", false, "vouch for the email address (email_verified: true; some apps require it)")
	admin := fs.Bool("admin", false, "make the user an administrator")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	invite := fs.Bool("invite", false, "print a one-time invitation link (valid 7 days) through which the user sets their own password, instead of a password")
	system := fs.Bool("system", false, "a system account for a program: no password and no sign-in, only API tokens (user create-token)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	ways := 0
	for _, set := range []bool{*pwStdin, *invite, *system} {
		if set {
			ways++
		}
	}
	if *username == "" || *email == "" || ways != 1 {
		return usageError{"user create needs --username, --email and either --password-stdin or --invite (or --system, for a program)"}
	}
	body := map[string]any{"username": *username, "email": *email, "name": *name, "email_verified": *verified, "admin": *admin}
	switch {
	case *system:
		body["system"] = true
	case *invite:
		body["invite"] = true
	default:
		pw, err := c.readSecret("password")
		if err != nil {
			return err
		}
		body["password"] = pw
	}
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		User       apiUser `json:"user"`
		Invitation *struct {
			URL       string    `json:"url"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"invitation"`
	}
	if _, err := api.call(ctx, http.MethodPost, "/users", body, &out); err != nil {
		return err
	}
	role := "user"
	if out.User.Admin {
		role = "administrator"
	}
	if out.User.System {
		role = "system " + role
	}
	fmt.Fprintf(c.stdout, "created %s %s (id %s)\n", role, out.User.Username, out.User.ID)
	if inv := out.Invitation; inv != nil {
		fmt.Fprintf(c.stdout, "invitation link (shown once, valid until %s):\n%s\n", inv.ExpiresAt.Local().Format(time.RFC1123), inv.URL)
	}
	return nil
}

// userList lists every user from the database opened here: it waits for
// the API's paged user search (GET /users), and so refuses while serve
// holds the database.
func (c *cli) userList(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("user list")
	api, err := c.open(fs, cfgPath, args, nil)
	if err != nil {
		return err
	}
	defer api.close()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tNAME\tADMIN\tBLOCKED")
	// Page through the search, newest account first, as the console
	// lists them; one page at a time, so memory does not grow with users.
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ID, Username, Email, Name string
				Admin, Blocked            bool
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := api.call(ctx, http.MethodGet, "/users?limit=500&cursor="+url.QueryEscape(cursor), nil, &page); err != nil {
			return err
		}
		for _, u := range page.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%v\n", u.ID, u.Username, u.Email, u.Name, u.Admin, u.Blocked)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	return tw.Flush()
}

func (c *cli) userSetPassword(ctx context.Context, args []string) error {
	uc := c.userCommand("set-password")
	pwStdin := uc.fs.Bool("password-stdin", false, "read the password from standard input")
	var pw string
	api, d, err := uc.run(ctx, args, "set-password", func() error {
		if !*pwStdin {
			return usageError{"user set-password needs --username and --password-stdin"}
		}
		var err error
		pw, err = c.readSecret("password")
		return err
	})
	if err != nil {
		return err
	}
	defer api.close()
	if _, err := api.call(ctx, http.MethodPost, "/users/"+url.PathEscape(d.User.ID)+"/password", map[string]string{"password": pw}, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "password of %s changed; their sessions and refresh tokens were ended\n", *uc.username)
	return nil
}

// patchUser sends a PATCH of the given fields and returns the user after.
func (a *adminClient) patchUser(ctx context.Context, id string, patch map[string]any) (apiUser, error) {
	var u apiUser
	_, err := a.call(ctx, http.MethodPatch, "/users/"+url.PathEscape(id), patch, &u)
	return u, err
}

// userSetEmailVerified vouches for a user's current email address (or,
// with --false, withdraws that), as --email-verified does at creation.
func (c *cli) userSetEmailVerified(ctx context.Context, args []string) error {
	uc := c.userCommand("set-email-verified")
	unverified := uc.fs.Bool("false", false, "mark the address as not verified instead")
	return c.setEmailVerified(ctx, uc, args, "set-email-verified", func() bool { return !*unverified })
}

// userVerifyEmail is set-email-verified without --false.
func (c *cli) userVerifyEmail(ctx context.Context, args []string) error {
	return c.setEmailVerified(ctx, c.userCommand("verify-email"), args, "verify-email", func() bool { return true })
}

func (c *cli) setEmailVerified(ctx context.Context, uc *userCommand, args []string, name string, verified func() bool) error {
	api, d, err := uc.run(ctx, args, name, nil)
	if err != nil {
		return err
	}
	defer api.close()
	u, err := api.patchUser(ctx, d.User.ID, map[string]any{"email_verified": verified()})
	if err != nil {
		return err
	}
	state := "verified"
	if !u.EmailVerified {
		state = "not verified"
	}
	fmt.Fprintf(c.stdout, "the email %s of %s is now %s\n", u.Email, u.Username, state)
	return nil
}

func (c *cli) userBlock(ctx context.Context, args []string, blocked bool) error {
	verb := map[bool]string{true: "block", false: "unblock"}[blocked]
	uc := c.userCommand(verb)
	api, d, err := uc.run(ctx, args, verb, nil)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		SessionsEnded int `json:"sessions_ended"`
		TokensRevoked int `json:"tokens_revoked"`
	}
	var res any
	if blocked {
		res = &out
	}
	if _, err := api.call(ctx, http.MethodPost, "/users/"+url.PathEscape(d.User.ID)+"/"+verb, nil, res); err != nil {
		return err
	}
	if blocked {
		fmt.Fprintf(c.stdout, "blocked %s; %d sessions ended, %d tokens revoked\n", *uc.username, out.SessionsEnded, out.TokensRevoked)
		return nil
	}
	fmt.Fprintf(c.stdout, "unblocked %s\n", *uc.username)
	return nil
}

// userDelete deletes a user at once, without asking (scripts call it):
// it says what went with them.
func (c *cli) userDelete(ctx context.Context, args []string) error {
	uc := c.userCommand("delete")
	api, d, err := uc.run(ctx, args, "delete", nil)
	if err != nil {
		return err
	}
	defer api.close()
	if _, err := api.call(ctx, http.MethodDelete, "/users/"+url.PathEscape(d.User.ID), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted user %s (id %s, %s) with %d sessions, %d consents, %d API tokens, %d app passwords and %d passkeys; the username and email stay unavailable for 30 days\n",
		d.User.Username, d.User.ID, d.User.Email, len(d.Sessions), len(d.Consents), len(d.APITokens), len(d.AppPasswords), len(d.Passkeys))
	return nil
}

// userUpdate edits the fields whose flags are given, and only those.
func (c *cli) userUpdate(ctx context.Context, args []string) error {
	uc := c.userCommand("update")
	fs := uc.fs
	fs.String("email", "", "new email address")
	fs.String("name", "", "full name")
	fs.String("given-name", "", "given name")
	fs.String("family-name", "", "family name")
	fs.Bool("admin", false, "--admin=true makes the user an administrator, --admin=false takes that away (never from the last one)")
	fs.String("roles", "", "roles, comma separated (replaces them; \"\" clears)")
	fs.String("groups", "", "local groups, comma separated (replaces them; \"\" clears)")
	fs.Bool("email-verified", false, "--email-verified=true vouches for the email address, =false withdraws that")
	patch := map[string]any{}
	api, d, err := uc.run(ctx, args, "update", func() error {
		fs.Visit(func(f *flag.Flag) {
			key := strings.ReplaceAll(f.Name, "-", "_")
			switch f.Name {
			case "username", "config":
				return
			case "admin", "email-verified":
				patch[key] = f.Value.(flag.Getter).Get().(bool)
			case "roles", "groups":
				patch[key] = splitList(f.Value.String())
			default:
				patch[key] = f.Value.String()
			}
		})
		if len(patch) == 0 {
			return usageError{"user update: give at least one field to change (see keyport user update --help)"}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer api.close()
	after, err := api.patchUser(ctx, d.User.ID, patch)
	if err != nil {
		return err
	}
	var changed []string
	for _, f := range []struct {
		key           string
		before, after any
	}{
		{"email", d.User.Email, after.Email}, {"email_verified", d.User.EmailVerified, after.EmailVerified},
		{"name", d.User.Name, after.Name}, {"given_name", d.User.GivenName, after.GivenName}, {"family_name", d.User.FamilyName, after.FamilyName},
		{"admin", d.User.Admin, after.Admin}, {"roles", strings.Join(d.User.Roles, ","), strings.Join(after.Roles, ",")},
		{"groups", strings.Join(d.User.Groups, ","), strings.Join(after.Groups, ",")},
	} {
		if f.before != f.after {
			changed = append(changed, fmt.Sprintf("%s %v → %v", f.key, f.before, f.after))
		}
	}
	if len(changed) == 0 {
		fmt.Fprintf(c.stdout, "%s is unchanged: it had these values already\n", after.Username)
		return nil
	}
	slices.Sort(changed)
	fmt.Fprintf(c.stdout, "updated %s: %s\n", after.Username, strings.Join(changed, "; "))
	return nil
}

// splitList reads a comma-separated flag; "" is the empty list.
func splitList(v string) []string {
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *cli) userResetSecondFactors(ctx context.Context, args []string) error {
	uc := c.userCommand("reset-2fa")
	api, d, err := uc.run(ctx, args, "reset-2fa", nil)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		TOTP           bool `json:"totp"`
		Passkeys       int  `json:"passkeys"`
		RecoveryCodes  int  `json:"recovery_codes"`
		TrustedDevices int  `json:"trusted_devices"`
	}
	if _, err := api.call(ctx, http.MethodPost, "/users/"+url.PathEscape(d.User.ID)+"/reset-2fa", nil, &out); err != nil {
		return err
	}
	if !out.TOTP && out.Passkeys+out.RecoveryCodes+out.TrustedDevices == 0 {
		fmt.Fprintf(c.stdout, "%s had no second factors; nothing changed\n", d.User.Username)
		return nil
	}
	app := "no authenticator app"
	if out.TOTP {
		app = "the authenticator app"
	}
	fmt.Fprintf(c.stdout, "removed the second factors of %s: %s, %d passkeys, %d recovery codes, %d trusted devices; they enrol again where two factors are required\n",
		d.User.Username, app, out.Passkeys, out.RecoveryCodes, out.TrustedDevices)
	return nil
}

func (c *cli) userResetLink(ctx context.Context, args []string) error {
	uc := c.userCommand("reset-link")
	api, d, err := uc.run(ctx, args, "reset-link", nil)
	if err != nil {
		return err
	}
	defer api.close()
	var link struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if _, err := api.call(ctx, http.MethodPost, "/users/"+url.PathEscape(d.User.ID)+"/password-reset-link", nil, &link); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "password-reset link for %s (one use, shown once, valid until %s):\n%s\n", d.User.Username, link.ExpiresAt.Local().Format(time.RFC1123), link.URL)
	return nil
}

// userCreateToken issues an API token for a system account: printed once.
func (c *cli) userCreateToken(ctx context.Context, args []string) error {
	uc := c.userCommand("create-token")
	name := uc.fs.String("name", "", "what the token is for (unique among the account's tokens)")
	expires := uc.fs.String("expires", "", "how long the token works, such as 720h or 90d (at most 400d)")
	scope := uc.fs.String("scope", account.ScopeReadWrite, "read-write, or read-only (may only read)")
	networks := uc.fs.String("networks", "", "IPs or CIDRs the token may be used from, comma separated (default: any)")
	var until time.Time
	api, d, err := uc.run(ctx, args, "create-token", func() error {
		if *name == "" || *expires == "" {
			return usageError{"user create-token needs --username, --name and --expires"}
		}
		life, err := parseDays(*expires)
		if err != nil {
			return usageError{"user create-token: --expires " + err.Error()}
		}
		until = time.Now().Add(life)
		return nil
	})
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		Token      string `json:"token"`
		Credential struct {
			ID string `json:"id"`
		} `json:"credential"`
	}
	body := map[string]any{"name": *name, "scope": *scope, "expires_at": until.UTC().Format(time.RFC3339), "allowed_networks": *networks}
	if _, err := api.call(ctx, http.MethodPost, "/users/"+url.PathEscape(d.User.ID)+"/api-tokens", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "API token %q for %s (id %s, %s, valid until %s; shown once):\n%s\n",
		*name, d.User.Username, out.Credential.ID, *scope, until.Local().Format(time.RFC1123), out.Token)
	return nil
}

// userRevokeToken revokes one API token of a user by its ID.
func (c *cli) userRevokeToken(ctx context.Context, args []string) error {
	uc := c.userCommand("revoke-token")
	id := uc.fs.String("id", "", "the token's ID (user create-token prints it)")
	api, d, err := uc.run(ctx, args, "revoke-token", func() error {
		if *id == "" {
			return usageError{"user revoke-token needs --username and --id"}
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer api.close()
	if _, err := api.call(ctx, http.MethodDelete, "/users/"+url.PathEscape(d.User.ID)+"/api-tokens/"+url.PathEscape(*id), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "revoked API token %s of %s\n", *id, d.User.Username)
	return nil
}

// parseDays reads a duration such as 720h or 90d (days of 24 hours).
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 10000 {
			return 0, fmt.Errorf("%q is not a number of days like 90d", v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is neither a duration like 720h nor days like 90d", v)
	}
	return d, nil
}
