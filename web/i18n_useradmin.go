package web

// deUserAdmin is German for the rules of administrators acting on users
// (account/admin*.go) and the pages of the one-time links they hand out.
var deUserAdmin = map[string]string{
	// account: the messages of the admin rules.
	"Only administrators may do this.": "Nur Administratoren dürfen das.",
	"There is no such user.":           "Diesen Benutzer gibt es nicht.",
	"This is the last administrator. Make someone else an administrator first.":              "Das ist der letzte Administrator. Machen Sie zuerst jemand anderen zum Administrator.",
	"Someone else changed this user since you loaded it. Reload and make your change again.": "Jemand anderes hat diesen Benutzer geändert, seit Sie ihn geladen haben. Laden Sie neu und nehmen Sie Ihre Änderung noch einmal vor.",
	"Another account already has this username or email address.":                            "Ein anderes Konto hat schon diesen Benutzernamen oder diese E-Mail-Adresse.",
	"There is no email address to verify.":                                                   "Es gibt keine E-Mail-Adresse, die bestätigt werden könnte.",
	"There is no phone number to verify.":                                                    "Es gibt keine Telefonnummer, die bestätigt werden könnte.",
	"At most 100 entries are allowed.":                                                       "Höchstens 100 Einträge sind erlaubt.",
	"Each entry must be at most 128 bytes, without commas or control characters.":            "Jeder Eintrag darf höchstens 128 Bytes lang sein, ohne Kommas oder Steuerzeichen.",
	"At most 64 app_metadata keys are allowed.":                                              "Höchstens 64 Schlüssel sind in app_metadata erlaubt.",
	"app_metadata keys are 1 to 64 letters, digits, dots, dashes or underscores.":            "Schlüssel in app_metadata bestehen aus 1 bis 64 Buchstaben, Ziffern, Punkten, Binde- oder Unterstrichen.",
	"Each app_metadata value must be text of at most 1 KiB.":                                 "Jeder Wert in app_metadata muss Text von höchstens 1 KiB sein.",
	"app_metadata must be at most 8 KiB in all.":                                             "app_metadata darf insgesamt höchstens 8 KiB groß sein.",
	"app_metadata must be a JSON object whose values are strings.":                           "app_metadata muss ein JSON-Objekt mit Zeichenketten als Werten sein.",
	"Set a password or send an invitation, not both.":                                        "Legen Sie ein Passwort fest oder verschicken Sie eine Einladung, nicht beides.",
	"Set a password or send an invitation.":                                                  "Legen Sie ein Passwort fest oder verschicken Sie eine Einladung.",
	"You cannot block your own account.":                                                     "Sie können Ihr eigenes Konto nicht sperren.",
	"You cannot delete your own account. Another administrator can.":                         "Sie können Ihr eigenes Konto nicht löschen. Eine andere Administratorin oder ein anderer Administrator kann das.",
	"This link is invalid, expired or already used. Ask your administrator for a new one.":   "Dieser Link ist ungültig, abgelaufen oder wurde schon verwendet. Bitten Sie Ihre Administratorin oder Ihren Administrator um einen neuen.",
	"The password of %s is kept by %s; reset it there.":                                      "Das Passwort von %s verwaltet %s; setzen Sie es dort zurück.",

	// account/audit.go: refused to a read-only credential.
	"This credential may only read.": "Dieser Zugang darf nur lesen.",

	// The pages of the links.
	"The two passwords do not match.": "Die beiden Passwörter stimmen nicht überein.",
	"Set your password":               "Legen Sie Ihr Passwort fest",
	"Choose a new password":           "Wählen Sie ein neues Passwort",
	"You were invited to Keyport as %s. Choose the password you will sign in with.": "Sie wurden als %s zu Keyport eingeladen. Wählen Sie das Passwort, mit dem Sie sich anmelden werden.",
	"Choose a new password for %s. You will be signed out everywhere.":              "Wählen Sie ein neues Passwort für %s. Sie werden überall abgemeldet.",
	"New password":             "Neues Passwort",
	"Set password":             "Passwort festlegen",
	"Your account is ready":    "Ihr Konto ist bereit",
	"Your password is changed": "Ihr Passwort ist geändert",
	"Sign in with your username and the password you just set.":       "Melden Sie sich mit Ihrem Benutzernamen und dem eben festgelegten Passwort an.",
	"You were signed out everywhere. Sign in with your new password.": "Sie wurden überall abgemeldet. Melden Sie sich mit Ihrem neuen Passwort an.",
}
