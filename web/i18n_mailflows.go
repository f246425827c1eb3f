package web

// deMailFlows is German for the pages of the flows that send mail.
var deMailFlows = map[string]string{
	"Forgot your password?": "Passwort vergessen?",
	"If an account with this name or address exists, we sent it an email with a link to choose a new password. The link works for one hour.": "Wenn ein Konto mit diesem Namen oder dieser Adresse existiert, haben wir ihm eine E-Mail mit einem Link geschickt, um ein neues Passwort zu wählen. Der Link gilt eine Stunde.",
	"Back to sign-in": "Zurück zur Anmeldung",
	"Enter your username or email address. We send a link to choose a new password to the account's email address.": "Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein. Wir schicken einen Link zum Wählen eines neuen Passworts an die E-Mail-Adresse des Kontos.",
	"Send the link": "Link senden",
	"Password reset by email is not available here. Please ask your administrator.":                  "Das Zurücksetzen des Passworts per E-Mail ist hier nicht möglich. Bitte fragen Sie Ihre Administration.",
	"Too many password reset requests from your network. Please try again in an hour.":               "Zu viele Anfragen zum Zurücksetzen von Passwörtern aus Ihrem Netz. Bitte versuchen Sie es in einer Stunde erneut.",
	"Enter your username or email address.":                                                          "Geben Sie Ihren Benutzernamen oder Ihre E-Mail-Adresse ein.",
	"A system account cannot issue its own API tokens; an administrator does.":                       "Ein Systemkonto kann sich keine eigenen API-Tokens ausstellen; das tut eine Administratorin oder ein Administrator.",
	"This link is invalid, expired or already used. Ask for a new one on your profile page.":         "Dieser Link ist ungültig, abgelaufen oder schon benutzt. Fordern Sie auf Ihrer Profilseite einen neuen an.",
	"Too many emails were sent to this account in the last hour. Please try again later.":            "An dieses Konto wurden in der letzten Stunde zu viele E-Mails geschickt. Bitte versuchen Sie es später erneut.",
	"This link is for an address the account no longer has. Ask for a new one on your profile page.": "Dieser Link gilt für eine Adresse, die das Konto nicht mehr hat. Fordern Sie auf Ihrer Profilseite einen neuen an.",
	"Your email address is verified already.":                                                        "Ihre E-Mail-Adresse ist bereits bestätigt.",
	"Your email address comes from %s, which says whether it is verified.":                           "Ihre E-Mail-Adresse kommt von %s, das auch sagt, ob sie bestätigt ist.",
}
