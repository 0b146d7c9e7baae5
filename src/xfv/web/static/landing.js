// The landing page: the fold of each Fig. 2 figure, chosen under it.
"use strict";

for (const select of document.querySelectorAll(".calibration select.fold")) {
  select.addEventListener("change", () => {
    const img = select.closest("figure").querySelector("img.fig2");
    const url = new URL(img.src);
    url.searchParams.set("fold", select.value);
    img.src = url.toString();
  });
}
