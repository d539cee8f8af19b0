/*
 * render_lock.h — one process-wide lock around every use of cairo's fonts
 * and of poppler (slip.c, form_pdf.c).
 *
 * Why: Debian 12's cairo 1.16 deadlocks when two threads use scaled fonts
 * at once (its global glyph-page cache evicts pages of a font that another
 * thread holds frozen: lock-order inversion between the font map's mutex
 * and a font's own).  Seen in test_form_pdf's test_threads: four renders
 * stuck in cairo_show_page / cairo_scaled_font_destroy /
 * cairo_show_text_glyphs.  Poppler's cairo backend also shares one
 * FreeType library between documents, which wants face creation and
 * disposal serialised.  So renders run one at a time; each keeps its own
 * per-thread caches, which stay useful.
 *
 * Held by: mg_form_render_pdf (yielding between sheets, so a field's
 * fit check on the loop waits for one sheet, not a whole bundle) and
 * mg_slip_render for the whole job,
 * mg_form_text_fits for its measurement, and the thread-exit destructors
 * of the per-thread caches.  Not recursive: never call one of those with
 * it held.
 */
#ifndef MG_RENDER_LOCK_H
#define MG_RENDER_LOCK_H

void mg__render_lock(void);
void mg__render_unlock(void);
/* Let whoever waits go first, then take the lock again (FIFO): a long
 * render calls it between sheets, with no cairo call in progress. */
void mg__render_yield(void);

#endif
