// relledger pages: show a chart point's change beside the chart when it is hovered or
// focused. The same words are each point's accessible name and tooltip, so the pages
// lose nothing without this script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const chart of document.querySelectorAll("svg[data-detail-target]")) {
    const target = document.getElementById(chart.dataset.detailTarget);
    if (!target) {
      continue;
    }
    const show = (event) => {
      const point = event.target.closest(".point");
      if (point) {
        target.textContent = point.dataset.detail;
      }
    };
    chart.addEventListener("focusin", show);
    chart.addEventListener("mouseover", show);
  }
});
