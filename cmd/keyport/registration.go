package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"
)

// The command line's side of dynamic client registration, through the
// management API (portal/apiregistration.go).

func (c *cli) registrationCreateToken(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("registration create-token")
	name := fs.String("name", "", "a label for the token")
	expires := fs.Duration("expires", 0, "how long the token registers apps, such as 24h (1m to 8760h)")
	maxUses := fs.Int("max-uses", 0, "how many apps it may register (default 0: any number until it expires)")
	hold := fs.Bool("hold-for-approval", false, "hold the apps it registers until an administrator approves each (keyport client approve)")
	api, err := c.open(fs, cfgPath, args, required("registration create-token needs --name and --expires", name))
	if err != nil {
		return err
	}
	defer api.close()
	if *expires <= 0 {
		return usageError{"registration create-token needs --expires"}
	}
	body := map[string]any{"name": *name, "expires_in": int64(*expires / time.Second), "max_uses": *maxUses, "hold_for_approval": *hold}
	var out struct {
		ID        string    `json:"id"`
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if _, err := api.call(ctx, http.MethodPost, "/registration-tokens", body, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "initial access token %s (id %s), valid until %s; it is shown only now\n", out.Token, out.ID, out.ExpiresAt.UTC().Format(time.RFC3339))
	return nil
}

func (c *cli) registrationListTokens(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("registration list-tokens")
	api, err := c.open(fs, cfgPath, args, nil)
	if err != nil {
		return err
	}
	defer api.close()
	var out struct {
		Items []struct {
			ID              string    `json:"id"`
			Name            string    `json:"name"`
			ExpiresAt       time.Time `json:"expires_at"`
			MaxUses         int       `json:"max_uses"`
			Uses            int       `json:"uses"`
			HoldForApproval bool      `json:"hold_for_approval"`
		} `json:"items"`
	}
	if _, err := api.call(ctx, http.MethodGet, "/registration-tokens", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tEXPIRES\tUSES\tHOLD FOR APPROVAL")
	for _, t := range out.Items {
		uses := fmt.Sprintf("%d", t.Uses)
		if t.MaxUses > 0 {
			uses = fmt.Sprintf("%d of %d", t.Uses, t.MaxUses)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", t.ID, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339), uses, t.HoldForApproval)
	}
	return tw.Flush()
}

func (c *cli) registrationRevokeToken(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("registration revoke-token")
	id := fs.String("id", "", "the token's ID (registration list-tokens)")
	api, err := c.open(fs, cfgPath, args, required("registration revoke-token needs --id", id))
	if err != nil {
		return err
	}
	defer api.close()
	if _, err := api.call(ctx, http.MethodDelete, "/registration-tokens/"+url.PathEscape(*id), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "initial access token %s revoked; the apps it registered stay\n", *id)
	return nil
}

func (c *cli) clientApprove(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("client approve")
	id := fs.String("id", "", "client ID")
	api, err := c.open(fs, cfgPath, args, required("client approve needs --id", id))
	if err != nil {
		return err
	}
	defer api.close()
	if _, err := api.call(ctx, http.MethodPost, "/clients/"+url.PathEscape(*id)+"/approve", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "client %s approved: people can sign in to it now\n", *id)
	return nil
}
