// Landing page: each Fig. 2 follows the fold chosen under it (a file of its own: the pages allow no inline script).
"use strict";

for (const select of document.querySelectorAll(".calibration select.fold")) {
  select.addEventListener("change", () => {
    const img = select.closest("figure").querySelector("img.fig2");
    const url = new URL(img.src);
    url.searchParams.set("fold", select.value);
    img.src = url.toString();
  });
}
