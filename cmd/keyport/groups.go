package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/keyport/keyport/storage"
)

// The group commands: local groups through the management API (a running
// server's control socket, or the API in this process), with the rules
// and audit entries of the console.

// group runs `keyport group <subcommand>`.
func (c *cli) group(ctx context.Context, args []string) error {
	return c.sub(ctx, "group", args, map[string]func(context.Context, []string) error{
		"list": c.groupList, "create": c.groupCreate, "rename": c.groupRename, "delete": c.groupDelete,
		"add-member":    func(ctx context.Context, a []string) error { return c.groupMember(ctx, a, true) },
		"remove-member": func(ctx context.Context, a []string) error { return c.groupMember(ctx, a, false) },
	})
}

// apiGroup is a group as the API answers it.
type apiGroup struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type apiMember struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
}

// groupByName finds a group by its name, compared as the store compares
// names (without regard to case).
func groupByName(ctx context.Context, api *adminClient, name string) (apiGroup, error) {
	var list struct{ Items []apiGroup }
	if _, err := api.call(ctx, http.MethodGet, "/groups", nil, &list); err != nil {
		return apiGroup{}, err
	}
	want := storage.Fold(strings.TrimSpace(name))
	for _, g := range list.Items {
		if storage.Fold(g.Name) == want {
			return g, nil
		}
	}
	return apiGroup{}, fmt.Errorf("there is no group %q", name)
}

func (c *cli) groupList(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("group list")
	api, err := c.open(fs, cfgPath, args, nil)
	if err != nil {
		return err
	}
	defer api.close()
	var list struct{ Items []apiGroup }
	if _, err := api.call(ctx, http.MethodGet, "/groups", nil, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tDESCRIPTION")
	for _, g := range list.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.ID, g.Name, g.Description)
	}
	return tw.Flush()
}

func (c *cli) groupCreate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("group create")
	name := fs.String("name", "", "group name (unique without regard to case)")
	desc := fs.String("description", "", "what the group is for")
	api, err := c.open(fs, cfgPath, args, required("group create needs --name", name))
	if err != nil {
		return err
	}
	defer api.close()
	var g apiGroup
	if _, err := api.call(ctx, http.MethodPost, "/groups", map[string]string{"name": *name, "description": *desc}, &g); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created group %s (%s)\n", g.Name, g.ID)
	return nil
}

func (c *cli) groupRename(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("group rename")
	name := fs.String("name", "", "the group's name now")
	to := fs.String("to", "", "its new name")
	api, err := c.open(fs, cfgPath, args, required("group rename needs --name and --to", name, to))
	if err != nil {
		return err
	}
	defer api.close()
	g, err := groupByName(ctx, api, *name)
	if err != nil {
		return err
	}
	if _, err := api.call(ctx, http.MethodPatch, "/groups/"+url.PathEscape(g.ID), map[string]string{"name": *to}, &g); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "renamed group %s to %s\n", *name, g.Name)
	return nil
}

func (c *cli) groupDelete(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("group delete")
	name := fs.String("name", "", "group name")
	api, err := c.open(fs, cfgPath, args, required("group delete needs --name", name))
	if err != nil {
		return err
	}
	defer api.close()
	g, err := groupByName(ctx, api, *name)
	if err != nil {
		return err
	}
	if _, err := api.call(ctx, http.MethodDelete, "/groups/"+url.PathEscape(g.ID), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "deleted group %s\n", g.Name)
	return nil
}

// groupMember adds (or removes) a member, named by username or email.
func (c *cli) groupMember(ctx context.Context, args []string, add bool) error {
	verb := map[bool]string{true: "add-member", false: "remove-member"}[add]
	fs, cfgPath := c.flags("group " + verb)
	name := fs.String("name", "", "group name")
	username := fs.String("username", "", "username or email")
	api, err := c.open(fs, cfgPath, args, required("group "+verb+" needs --name and --username", name, username))
	if err != nil {
		return err
	}
	defer api.close()
	g, err := groupByName(ctx, api, *name)
	if err != nil {
		return err
	}
	path := "/groups/" + url.PathEscape(g.ID) + "/members"
	if add {
		if _, err := api.call(ctx, http.MethodPost, path, map[string]string{"login": *username}, nil); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added %s to group %s\n", *username, g.Name)
		return nil
	}
	m, err := findMember(ctx, api, path, *username)
	if err != nil {
		return err
	}
	if _, err := api.call(ctx, http.MethodDelete, path+"/"+url.PathEscape(m.ID), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "removed %s from group %s\n", *username, g.Name)
	return nil
}

// findMember pages through a group's members for the one with this
// username or email.
func findMember(ctx context.Context, api *adminClient, path, login string) (apiMember, error) {
	want := storage.Fold(strings.TrimSpace(login))
	cursor := ""
	for {
		var page struct {
			Items      []apiMember
			NextCursor string `json:"next_cursor"`
		}
		q := url.Values{"limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if _, err := api.call(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &page); err != nil {
			return apiMember{}, err
		}
		for _, m := range page.Items {
			if storage.Fold(m.Username) == want || (m.Email != "" && storage.Fold(m.Email) == want) {
				return m, nil
			}
		}
		if page.NextCursor == "" {
			return apiMember{}, fmt.Errorf("%s is not a member of this group", login)
		}
		cursor = page.NextCursor
	}
}
