import { createApp } from "vue";
import "../common/theme.css";
import DistrictApp from "./DistrictApp.vue";

createApp(DistrictApp).mount("#app");
