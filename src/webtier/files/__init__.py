"""What gets written: every host's config files (configs: the manifest, what each role
derives, the render command), one module per tier for what that tier derives, and the
plain-Jinja2 environment both engines render with (render)."""
