"""Drop repeated inline ``<script>`` blocks from the book's pages.

Sphinx 7.4 adds a script that an extension registers after the builder has
started (sphinx-thebe's and sphinx-togglebutton's inline configuration, added
at ``env-before-read-docs``) twice: once as registered, once again while
preparing to write, with ``None`` turned into ``""`` so the duplicate check
misses it.  sphinx-thebe's block declares ``const`` names, so the second copy
raises "Identifier ... has already been declared" in the browser console.
This extension keeps the first copy of every script on each page.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, keep = set(), []
    for js in scripts:
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            keep.append(js)
    scripts[:] = keep


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
